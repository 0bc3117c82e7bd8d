#!/usr/bin/env bash
# Install everything the tests need, then run every test (Python, Node, browser, GUI).
#
#   scripts/test.sh [--python PYTHON] [pytest arguments...]
#
# Without --python: makes .venv with `python3` (or $PYTHON). With --python (a path, or
# a name in PATH, e.g. --python ~/.pyenv/versions/3.12.1/bin/python): one venv per version,
# .venv-3.12, so several versions' venvs live side by side. It installs the package with
# its test extra, installs and builds the JavaScript client (npm ci), and runs pytest,
# which also runs the Node tests (tests/test_js_client.py) and the headless-Chromium tests.
# Node, browser and GUI tests skip when node/npm, chromium/chromedriver or Xvfb and the
# libraries Qt loads are missing, unless LIAISON_REQUIRE_NODE=1 / LIAISON_REQUIRE_BROWSER=1 /
# LIAISON_REQUIRE_GUI=1 (CI sets them): then they fail.
# As root on Debian, it installs what is missing with apt-get: chromium and
# chromium-driver; xvfb, Tk and the X libraries Qt needs (scripts/gui-packages.txt, plus
# whatever `ldd` finds missing for Qt's xcb plugin: scripts/qt_missing_packages.py); and
# python3-venv if the venv cannot be made without it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
if [ "${1:-}" = --python ]; then
    [ $# -ge 2 ] || { echo "scripts/test.sh: --python needs an interpreter" >&2; exit 2; }
    PYTHON="$2"
    shift 2
    version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    VENV=".venv-$version"
fi

is_root_with_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

apt_install() {
    # The package lists may be missing on a fresh machine; install needs them.
    apt-get install -y -qq "$@" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}

if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -m venv "$VENV"; then
    # Debian's and Ubuntu's python3 have no working venv until python3-venv is installed.
    is_root_with_apt || exit 1
    rm -rf "$VENV"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".[test]"

if command -v npm >/dev/null; then
    (cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
else
    echo "scripts/test.sh: npm not found; the Node tests will skip" >&2
fi

if ! command -v chromium >/dev/null && is_root_with_apt; then
    apt_install chromium chromium-driver
fi

# What Qt's xcb plugin cannot load, as Debian packages ("libxcb-icccm4 (libxcb-icccm.so.4)").
qt_missing=$("$VENV/bin/python" scripts/qt_missing_packages.py 2>/dev/null | cut -d' ' -f1 || true)
if ! command -v Xvfb >/dev/null || [ -n "$qt_missing" ] \
    || ! "$VENV/bin/python" -c "import tkinter" 2>/dev/null; then
    if is_root_with_apt; then
        # shellcheck disable=SC2046,SC2086 # one package name per word
        apt_install xvfb $(cat scripts/gui-packages.txt) $qt_missing
    elif [ -n "$qt_missing" ]; then
        echo "scripts/test.sh: Qt cannot load its xcb plugin; missing packages:" $qt_missing >&2
    fi
fi

# One pytest worker per core (pytest-xdist): on 2 cores the suite takes about 60% of its
# time in one process. Arguments given after these win: `scripts/test.sh -n 0` runs it
# in this one process.
exec "$VENV/bin/python" -m pytest -n auto --dist worksteal "$@"
