# Sourced by demo.sh and test.sh: create the virtual environment and install usvpipe
# with the extras given in $1 (none if empty), CPU build of torch first (the GPU build is a multi-GB
# download; install it yourself first if you have a GPU, and this keeps it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${USVPIPE_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -c "import torch" 2>/dev/null || "$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".${1:+[$1]}"
export MPLBACKEND=Agg
