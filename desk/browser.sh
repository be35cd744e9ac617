#!/usr/bin/env bash
# The desk in a real browser, in one command:
#
#   desk/browser.sh        builds amparo, amparo-relay and amparo-desk (debug), then runs
#                          desk/browser/story.py: Debian's Chromium, driven by WebDriver
#                          (selenium), plays the focal point's story against a real relay,
#                          with an axe-core pass on every screen and a screenshot of each
#                          (saved in $SCREENSHOTS, default <target>/desk-screenshots).
#
# Installs what it needs, once: chromium and chromium-driver from Debian (apt-get), selenium
# from PyPI in a virtualenv under desk/.tools/ (gitignored), and axe-core from npm (the version
# in desk/browser/package-lock.json) under desk/browser/node_modules (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TOOLS="$ROOT/desk/.tools"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

say() { printf '\n-- %s\n' "$*"; }

say "browser tools"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if command -v sudo >/dev/null && [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromium --version
chromedriver --version
if [ ! -x "$TOOLS/venv/bin/python" ] || ! "$TOOLS/venv/bin/python" -c 'import selenium' 2>/dev/null; then
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/desk/browser/requirements.txt"
fi
"$TOOLS/venv/bin/python" -c 'import selenium; print("selenium", selenium.__version__)'
if [ ! -f "$ROOT/desk/browser/node_modules/axe-core/axe.min.js" ]; then
    (cd "$ROOT/desk/browser" && npm ci --silent --no-audit --no-fund)
fi

say "building amparo, amparo-relay and amparo-desk"
cargo build -p amparo -p amparo-relay -p amparo-desk
export AMPARO_BIN="$TARGET_DIR/debug/amparo"
export AMPARO_RELAY_BIN="$TARGET_DIR/debug/amparo-relay"
export AMPARO_DESK_BIN="$TARGET_DIR/debug/amparo-desk"
export AXE_JS="$ROOT/desk/browser/node_modules/axe-core/axe.min.js"
export SCREENSHOTS="${SCREENSHOTS:-$TARGET_DIR/desk-screenshots}"

say "the desk story in Chromium"
start=$(date +%s)
"$TOOLS/venv/bin/python" "$ROOT/desk/browser/story.py"
echo "the browser story took $(( $(date +%s) - start )) s; screenshots in $SCREENSHOTS"
