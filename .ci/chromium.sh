#!/usr/bin/env bash
# Installs Debian's Chromium for the viewer's browser tests (tests/viewer/) when /usr/bin/chromium is
# missing. Playwright drives it through executable_path; no browser is downloaded by Playwright.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
fi
/usr/bin/chromium --version 2>/dev/null | head -n 1
