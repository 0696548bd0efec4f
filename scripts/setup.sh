#!/usr/bin/env bash
# Set-up for everything that runs on CPU: a virtual environment (.venv, or $VENV) holding the
# package in editable mode with its extras. Re-running it is cheap: it reinstalls only when
# pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-train,eval,demo,dense,weights,dev}

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating virtual environment $VENV"
    python3 -m venv "$VENV"
fi
stamp="$VENV/.llava-vitsplit-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[setup] installing llava-vitsplit[$EXTRAS] (first time: a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
    echo "$want" > "$stamp"
fi
echo "[setup] ready: $VENV/bin/python"
