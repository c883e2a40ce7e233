#!/bin/sh
# The browser tests of the im2col page (tests/test_explain_page.py) drive
# Debian's chromium headless. Install it when it is missing and apt-get can run
# as root; otherwise say so once (those tests are then skipped, with a message).
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
        exit 0
    fi
done
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser tests: apt-get install -y chromium"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get install -y --no-install-recommends chromium ||
        { apt-get update && apt-get install -y --no-install-recommends chromium; }; then
        exit 0
    fi
    echo "apt-get could not install chromium: the browser tests will be skipped"
else
    echo "chromium is not installed and apt-get cannot run as root here: the browser"
    echo "tests of the im2col page will be skipped (apt-get install chromium to run them)"
fi
exit 0
