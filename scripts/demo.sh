#!/usr/bin/env bash
# Set up a virtual environment and run the whole pipeline on built-in synthetic data
# (or on your own config: bash scripts/demo.sh --config usvpipe.toml).
# Usage: bash scripts/demo.sh [usvpipe demo options]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${USVPIPE_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[explore]"
export MPLBACKEND=Agg
exec "$VENV/bin/usvpipe" demo "$@"
