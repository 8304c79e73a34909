"""The installed distribution's metadata: what ``pip show`` and PyPI show a new user."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pip

from tests.support import ROOT


class TestMetadata:
    """The metadata names a home, the authors and the licence, with the licence text."""

    def test_project_urls(self) -> None:
        """Homepage, Documentation, Changelog and Issues are Project-URLs."""
        metadata = importlib.metadata.metadata("logbridge")
        urls = dict(
            entry.split(", ", 1) for entry in metadata.get_all("Project-URL") or []
        )
        assert set(urls) >= {"Homepage", "Documentation", "Changelog", "Issues"}
        assert all(url.startswith("https://") for url in urls.values())

    def test_author_and_license(self) -> None:
        """Author is set, and the licence is MIT with its text in a LICENSE file."""
        metadata = importlib.metadata.metadata("logbridge")
        author = metadata.get("Author") or metadata.get("Author-email") or ""
        assert "logbridge contributors" in author
        assert "MIT" in (metadata.get("License-Expression") or metadata.get("License") or "")
        text = (ROOT / "LICENSE").read_text()
        assert text.startswith("MIT License")
        assert "Copyright (c) 2026 logbridge contributors" in text

    def test_pip_show_has_a_home_page_and_author(self) -> None:
        """``pip show logbridge`` prints an author and a home page.

        pyproject metadata has no Home-page field; pip 24.1+ (pypa/pip#12569, which
        scripts/test installs) shows the Project-URL labelled Homepage in its place.
        """
        shown = subprocess.run(
            [sys.executable, "-m", "pip", "show", "logbridge"],
            capture_output=True, text=True, check=True,
        ).stdout
        fields = dict(line.split(": ", 1) for line in shown.splitlines() if ": " in line)
        assert "logbridge contributors" in fields.get("Author", "")
        assert tuple(int(part) for part in pip.__version__.split(".")[:2]) >= (24, 1)
        assert fields.get("Home-page") == "https://github.com/logbridge/logbridge", shown
