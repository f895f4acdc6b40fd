#!/usr/bin/env bash
# Set up a virtual environment and run the whole pipeline on built-in synthetic data.
# Usage: bash scripts/demo.sh [usvpipe demo options, e.g. --real or --out DIR]
source "$(dirname "$0")/_venv.sh" ""
exec "$VENV/bin/usvpipe" demo "$@"
