#!/usr/bin/env bash
# Install Debian's Chromium for the Playwright browser tests (tests/browser/).
# Idempotent: does nothing but print the version when chromium is already there.
# Playwright's own browser download (`playwright install`) is NOT used: it
# cannot reach its download host here; the tests launch /usr/bin/chromium.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export DEBIAN_FRONTEND=noninteractive

if [ ! -x "$CHROMIUM" ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "install-browser: installing chromium via apt-get ..."
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends \
        chromium fonts-liberation >/dev/null
fi

echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo "chromium at $CHROMIUM not runnable")"
"$CHROMIUM" --version >/dev/null 2>&1
