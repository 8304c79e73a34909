# Shared by scripts/test and scripts/demo: find a Python and build a virtualenv for it.
# Sourced, not run.

# find_python VERSION -> prints the path of an interpreter for VERSION (e.g. 3.12)
find_python() {
  local version="$1" root candidate
  if command -v pyenv >/dev/null 2>&1; then
    root="$(pyenv root)"
    for candidate in "$root"/versions/"$version".*/bin/python"$version"; do
      [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    done
  fi
  for candidate in "$HOME"/.pyenv/versions/"$version".*/bin/python"$version"; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  command -v "python$version" 2>/dev/null && return 0
  return 1
}

# ensure_venv VERSION EXTRAS -> prints the venv's python, creating/updating the venv if needed.
# The install is redone only when pyproject.toml or the extras change.
ensure_venv() {
  local version="$1" extras="$2" python venv stamp want
  python="$(find_python "$version")" || { echo "Python $version not found (install it with pyenv)" >&2; return 1; }
  venv=".venv/py$version"
  stamp="$venv/.logbridge-installed"
  want="$(cat pyproject.toml | sha256sum | cut -c1-16)-$extras"
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" >&2
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing logbridge[$extras] into $venv ..." >&2
    # pip 24.1+ shows the project's Homepage URL in `pip show` (pypa/pip#12569).
    if ! { "$venv/bin/python" -m pip install --disable-pip-version-check -q "pip>=24.1" &&
           "$venv/bin/python" -m pip install --disable-pip-version-check -e ".[$extras]"; } \
        > "$venv/install.log" 2>&1; then
      cat "$venv/install.log" >&2
      return 1
    fi
    echo "$want" > "$stamp"
  fi
  echo "$venv/bin/python"
}
