#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the test suite. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh -m slow        # the slow tests only
#   bash scripts/test.sh -m "slow or not slow"   # everything
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${VENV:-.venv}
"$VENV/bin/ruff" check --quiet llava_vitsplit scripts tests eval
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "[test] pytest collected no tests: that is a failure, not a pass" >&2
fi
exit "$status"
