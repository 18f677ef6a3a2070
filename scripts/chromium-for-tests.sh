#!/usr/bin/env bash
# Print the path of a Chromium that the HTML run-report tests can drive headless.
# When none is installed and we are root on Debian/Ubuntu, install Debian's `chromium` first
# (apt-get output goes to stderr). Prints nothing when no browser can be had; the browser
# tests then skip and say why.
set -uo pipefail
find_browser() {
    for name in chromium chromium-browser google-chrome; do
        if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
    done
    return 1
}
find_browser && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } >&2
    find_browser && exit 0
fi
exit 0
