#!/usr/bin/env bash
# Set up a virtual environment (CPU build of torch) and run the test suite.
# Usage: bash scripts/test.sh [pytest args]
source "$(dirname "$0")/_venv.sh" dev
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# the slowest tests are listed at the end, so a CI run that creeps towards its time budget says where
exec "$VENV/bin/python" -m pytest -q --durations=15 "$@"
