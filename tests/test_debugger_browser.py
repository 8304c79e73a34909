"""The debugger page in a real headless Chromium: live events, filters, details and XSS safety.

Events are sent the way applications send them, through ``logging`` and an
``AnalyticsHandler`` pointed at the collector. The browser comes from Debian's
``chromium`` and ``chromium-driver``; ``scripts/ensure-browser`` installs them when missing,
so this test runs on a fresh machine instead of being skipped.
"""

from __future__ import annotations

import logging
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from logbridge.collector import Collector
from tests.support import ROOT, analytics_logger

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "docs" / "debugger.png"
KEY = "wk_browser_s3cret_key"
XSS = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>window.__pwned = 1</script>"
TIMESTAMP = "2024-05-01T12:00:00.123Z"


def ensure_browser() -> None:
    """Install Chromium and its driver if they are missing (scripts/ensure-browser)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        subprocess.run([str(ROOT / "scripts" / "ensure-browser")], check=True, timeout=900)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for this module's tests, quit at the end."""
    ensure_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1440,1000", "--force-device-scale-factor=1",
                     "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(
    browser: WebDriver, collector_factory: Callable[..., Collector]
) -> Iterator[tuple[WebDriver, Collector]]:
    """The debugger page of a fresh collector (write key required), loaded and live."""
    collector = collector_factory(write_key=KEY)
    browser.get(collector.url + "/")
    browser.execute_script("window.__alerts = []; window.alert = (m) => __alerts.push(m);")
    wait(browser, lambda d: status(d) == "live")
    yield browser, collector
    browser.get("about:blank")


def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 10) -> Any:
    """Wait until ``condition(driver)`` is truthy; its value."""
    waiting = WebDriverWait(
        driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
    )
    return waiting.until(condition)


def status(driver: WebDriver) -> str:
    """The connection status shown in the top bar."""
    return str(driver.find_element(By.ID, "status").text)


def rows(driver: WebDriver) -> list[WebElement]:
    """The event rows shown, newest first."""
    return list(driver.find_elements(By.CSS_SELECTOR, "#rows > li.event"))


def column(driver: WebDriver, name: str) -> list[str]:
    """The text of one column (``name``, ``type``, ``user``...) of every row shown."""
    texts: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), cell => cell.textContent)",
        f"#rows .line .{name}",
    )
    return texts


def send_through_logging(collector: Collector, calls: list[tuple[str, dict[str, Any]]]) -> None:
    """Log ``(message, extra)`` calls through an AnalyticsHandler aimed at ``collector``."""
    with analytics_logger(collector.endpoint, write_key=KEY, flush_at=100) as (log, handler):
        for message, extra in calls:
            log.info(message, extra=extra)
        assert handler.flush(timeout=10)


def send_invalid(collector: Collector) -> None:
    """POST one invalid track (no event, snake_case user_id) as another client might."""
    bad = {"type": "track", "user_id": "u7", "userId": "u7", "messageId": str(uuid.uuid4()),
           "timestamp": TIMESTAMP, "properties": {"plan": "pro"}}
    answer = requests.post(collector.endpoint, json={"batch": [bad]}, auth=(KEY, ""), timeout=5)
    assert answer.status_code == 200


SAMPLE: list[tuple[str, dict[str, Any]]] = [
    ("identify", {"user_id": "u1", "traits": {"email": "ada@example.com", "plan": "pro"}}),
    ("page", {"user_id": "u1", "page_name": "Pricing", "category": "Docs"}),
    ("Order Completed", {"user_id": "u1", "order_id": "o1", "revenue": 99.99}),
    ("Signed Up", {"anonymous_id": "anon-42", "source": "newsletter"}),
    ("group", {"user_id": "u1", "group_id": "acme", "traits": {"employees": 150}}),
    ("Order Completed", {"user_id": "u2", "order_id": "o2", "revenue": 12.5}),
]


class TestDebuggerPage:
    """The page shows, filters and explains events, and never runs their content."""

    def test_events_appear_live_newest_first(self, page: tuple[WebDriver, Collector]) -> None:
        """Events logged after the page loaded appear without a reload, newest first."""
        driver, collector = page
        send_through_logging(collector, SAMPLE[:3])
        wait(driver, lambda d: len(rows(d)) == 3)
        assert column(driver, "name") == ["Order Completed", "Pricing", "—"]
        assert column(driver, "type") == ["track", "page", "identify"]
        assert set(column(driver, "format")) == {"segment"}
        send_through_logging(collector, SAMPLE[3:4])
        wait(driver, lambda d: column(d, "name")[:1] == ["Signed Up"])
        assert column(driver, "user")[0] == "anon-42"
        assert driver.find_element(By.ID, "count-events").text == "4"

    def test_filters_and_search(self, page: tuple[WebDriver, Collector]) -> None:
        """Type, event name, user, only-invalid and free text each narrow the rows."""
        driver, collector = page
        send_through_logging(collector, SAMPLE)
        send_invalid(collector)
        wait(driver, lambda d: len(rows(d)) == 7)
        type_filter = Select(driver.find_element(By.ID, "filter-type"))
        wait(driver, lambda d: "identify" in [o.text for o in type_filter.options])
        type_filter.select_by_value("identify")
        wait(driver, lambda d: column(d, "type") == ["identify"])
        type_filter.select_by_value("")
        event_filter = Select(driver.find_element(By.ID, "filter-event"))
        event_filter.select_by_value("Order Completed")
        wait(driver, lambda d: column(d, "user") == ["u2", "u1"])
        event_filter.select_by_value("")
        driver.find_element(By.ID, "filter-user").send_keys("anon-42")
        wait(driver, lambda d: column(d, "name") == ["Signed Up"])
        driver.find_element(By.ID, "filter-user").clear()
        driver.find_element(By.ID, "filter-invalid").click()
        wait(driver, lambda d: column(d, "user") == ["u7"])
        driver.find_element(By.ID, "filter-invalid").click()
        driver.find_element(By.ID, "search").send_keys("newsletter")
        wait(driver, lambda d: column(d, "name") == ["Signed Up"])

    def test_invalid_event_highlighted_with_its_rule(
        self, page: tuple[WebDriver, Collector]
    ) -> None:
        """An invalid row is marked, lists each problem with its rule, and marks the field."""
        driver, collector = page
        send_invalid(collector)
        wait(driver, lambda d: len(rows(d)) == 1)
        (row,) = rows(driver)
        assert "invalid" in row.get_attribute("class")
        assert row.find_element(By.CSS_SELECTOR, ".check").text == "2 problems"
        problems = [p.text for p in row.find_elements(By.CSS_SELECTOR, ".problems-inline li")]
        assert problems == ["required-field missing event",
                            "camel-case-field user_id is not a spec field: use userId"]
        row.find_element(By.CSS_SELECTOR, ".line").click()
        marked = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".json .j-bad"))
        assert [m.text for m in marked] == [
            '"user_id": "u7",  ⚠ camel-case-field: user_id is not a spec field: use userId'
        ]

    def test_expand_json_then_raw_request(self, page: tuple[WebDriver, Collector]) -> None:
        """One click shows the whole JSON; another shows the request, with the key redacted."""
        driver, collector = page
        send_through_logging(collector, SAMPLE[2:3])
        wait(driver, lambda d: len(rows(d)) == 1)
        driver.find_element(By.CSS_SELECTOR, "#rows .line").click()
        json_view = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, ".detail .json"))
        message = collector.messages[0]
        assert f'"messageId": "{message["messageId"]}"' in json_view.text
        assert '"revenue": 99.99' in json_view.text
        driver.find_element(By.CSS_SELECTOR, ".raw-toggle").click()
        headers = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".raw .headers tr"))
        shown = dict(row.text.split(" ", 1) for row in headers)
        assert shown["Authorization"] == "Basic ***"
        body = driver.find_element(By.CSS_SELECTOR, ".raw .body").text
        assert message["messageId"] in body
        assert KEY not in driver.page_source

    def test_event_names_are_text_never_html(self, page: tuple[WebDriver, Collector]) -> None:
        """An event named like an HTML tag shows those characters and runs nothing."""
        driver, collector = page
        send_through_logging(collector, [
            (XSS, {"user_id": "<b>bold</b>", XSS: XSS}),
            (XSS_SCRIPT, {"user_id": "u1"}),
        ])
        wait(driver, lambda d: len(rows(d)) == 2)
        assert column(driver, "name") == [XSS_SCRIPT, XSS]
        assert column(driver, "user")[1] == "<b>bold</b>"
        driver.find_elements(By.CSS_SELECTOR, "#rows .line")[1].click()
        json_view = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, ".detail .json"))
        assert f'"{XSS}": "{XSS}"' in json_view.text
        counts = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#by-event .label")]
        assert XSS in counts
        assert driver.find_elements(By.TAG_NAME, "img") == []
        assert driver.find_elements(By.CSS_SELECTOR, "#rows b, #rows script") == []
        assert driver.execute_script("return [window.__alerts, window.__pwned]") == [[], None]
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018  (reading it raises if there is none)

    def test_refused_requests_are_shown(self, page: tuple[WebDriver, Collector]) -> None:
        """A request refused with 401 brings no event, but the page shows it was refused."""
        driver, collector = page
        with analytics_logger(collector.endpoint, write_key="wrong", max_retries=0) as (log, h):
            log.info("Lost", extra={"user_id": "u1"})
            h.flush(timeout=10)
        refused = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#by-status .refused"))
        assert [r.text.split() for r in refused] == [["401", "write", "key", "refused", "1"]]
        assert rows(driver) == []

    def test_pause_resume_and_clear(self, page: tuple[WebDriver, Collector]) -> None:
        """Paused, new events wait; resumed, they show; Clear empties the page and the API."""
        driver, collector = page
        send_through_logging(collector, SAMPLE[:1])
        wait(driver, lambda d: len(rows(d)) == 1)
        driver.find_element(By.ID, "pause").click()
        send_through_logging(collector, SAMPLE[1:3])
        wait(driver, lambda d: status(d) == "paused · 2 waiting")
        assert len(rows(driver)) == 1
        driver.find_element(By.ID, "pause").click()
        wait(driver, lambda d: len(rows(d)) == 3)
        driver.find_element(By.ID, "clear").click()
        wait(driver, lambda d: not rows(d) and d.find_element(By.ID, "empty").is_displayed())
        events = requests.get(collector.url + "/events", timeout=5).json()["events"]
        assert events == []

    def test_polling_when_there_is_no_event_source(
        self, browser: WebDriver, collector: Collector
    ) -> None:
        """Without EventSource the page polls /events and still shows new events."""
        script = browser.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.EventSource;"}
        )
        try:
            browser.get(collector.url + "/")
            wait(browser, lambda d: status(d) == "polling")
            with analytics_logger(collector.endpoint, flush_at=1) as (log, handler):
                log.info("Polled", extra={"user_id": "u1"})
                assert handler.flush(timeout=10)
            wait(browser, lambda d: column(d, "name") == ["Polled"])
        finally:
            browser.execute_cdp_cmd(
                "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
            )
            browser.get("about:blank")

    def test_screenshot_for_the_readme(self, page: tuple[WebDriver, Collector]) -> None:
        """A representative page (one invalid event opened) is saved as docs/debugger.png."""
        driver, collector = page
        send_through_logging(collector, SAMPLE[:3])
        send_invalid(collector)
        send_through_logging(collector, SAMPLE[3:])
        refused = requests.post(collector.endpoint, json={"batch": []}, auth=("x", ""), timeout=5)
        assert refused.status_code == 401
        wait(driver, lambda d: len(rows(d)) == 7)
        driver.find_element(By.CSS_SELECTOR, "#rows li.invalid .line").click()
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".json .j-bad"))
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#by-status .refused"))
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        logging.getLogger(__name__).info("screenshot saved to %s", SCREENSHOT)
