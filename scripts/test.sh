#!/usr/bin/env bash
# Install everything the tests need, then run every test (Python, Node, browser).
#
#   scripts/test.sh [pytest arguments...]
#
# Creates .venv (Python >= 3.10 as `python3`, or $PYTHON), installs the package with its
# test extra, installs and builds the JavaScript client (npm ci), and runs pytest, which
# also runs the Node tests (tests/test_js_client.py) and the headless-Chromium tests.
# Node and browser tests skip when node/npm or chromium/chromedriver are missing, unless
# LIAISON_REQUIRE_NODE=1 / LIAISON_REQUIRE_BROWSER=1 (CI sets both): then they fail.
# As root on Debian with no Chromium, it installs chromium and chromium-driver with apt-get,
# and likewise xvfb, the X libraries Qt needs and Tk (scripts/gui-packages.txt) for GUI
# tests, and python3-venv if the venv cannot be made without it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ] && ! "$PYTHON" -m venv .venv; then
    # Debian's and Ubuntu's python3 have no working venv until python3-venv is installed.
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || exit 1
    rm -rf .venv
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"

if command -v npm >/dev/null; then
    (cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
else
    echo "scripts/test.sh: npm not found; the Node tests will skip" >&2
fi

if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # The package lists may be missing on a fresh machine; install needs them.
    apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }
fi

if { ! command -v Xvfb >/dev/null || ! ldconfig -p | grep -q libxcb-cursor.so.0; } \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # shellcheck disable=SC2046 # one package name per word
    apt-get install -y -qq xvfb $(cat scripts/gui-packages.txt) >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq xvfb $(cat scripts/gui-packages.txt) >/dev/null; }
fi

exec .venv/bin/python -m pytest "$@"
