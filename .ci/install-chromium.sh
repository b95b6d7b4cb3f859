#!/usr/bin/env bash
# Chromium for the HTML report's headless-browser test (test/report-browser.test.ts).
# Idempotent: installs Debian's chromium only when /usr/bin/chromium is missing.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: installing Debian's chromium"
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
