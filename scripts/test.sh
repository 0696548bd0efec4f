#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the test suite. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh -m slow        # the slow tests only
#   bash scripts/test.sh -m "slow or not slow"   # everything
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${VENV:-.venv}
# The demo's browser test drives Debian's headless Chromium; install it where we can (root + apt).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[test] installing chromium and chromium-driver for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
        || echo "[test] could not install chromium: the browser test will be skipped" >&2
fi
"$VENV/bin/ruff" check --quiet llava_vitsplit scripts tests eval
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "[test] pytest collected no tests: that is a failure, not a pass" >&2
fi
exit "$status"
