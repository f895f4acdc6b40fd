# Sourced by demo.sh and test.sh: create the virtual environment and install usvpipe with the
# extras given in $1 (none if empty). Which PyTorch build to install is your choice:
#
#   USVPIPE_TORCH=keep     use the torch already in the venv (install it yourself first); never download one
#   USVPIPE_TORCH=cpu      the CPU-only build: from a CPU wheel your pip already serves (a local wheel
#                          folder or mirror), else from PyTorch's own CPU wheel index
#                          (download.pytorch.org/whl/cpu; about 200 MB to download)
#   USVPIPE_TORCH=pypi     whatever PyPI serves: on Linux x86_64 that is the CUDA build, which pulls
#                          18 NVIDIA packages (cuda-toolkit, cudnn, cublas, nccl, triton, ...; several GB);
#                          on macOS the Metal (MPS) build. Needed for an NVIDIA GPU.
#   USVPIPE_TORCH=auto     (default) keep a torch already in the venv; else pypi when `nvidia-smi` finds
#                          a GPU; else cpu.
#
# Measured on the project's 2-core Linux machine with the CPU build: see benchmarks/install-size-and-time.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${USVPIPE_VENV:-.venv}"
TORCH_VERSION="2.13.0"
CPU_INDEX="https://download.pytorch.org/whl/cpu"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip

_have_torch() { "$VENV/bin/python" -c "import torch" 2>/dev/null; }
# Does pip, as configured here, already resolve torch to a +cpu build (a local wheel or mirror)?
_cpu_wheel_served() {
    "$VENV/bin/python" -m pip install -q --dry-run --ignore-installed --no-deps --report - "torch==$TORCH_VERSION" 2>/dev/null \
        | "$VENV/bin/python" -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if any("+cpu" in i["metadata"]["version"] for i in r["install"]) else 1)'
}

choice="${USVPIPE_TORCH:-auto}"
if [ "$choice" = auto ]; then
    if _have_torch; then choice=keep
    elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then choice=pypi
    else choice=cpu
    fi
fi
case "$choice" in
    keep)
        _have_torch || { echo "usvpipe: error: USVPIPE_TORCH=keep but $VENV has no torch (fix: install torch into $VENV first, or unset USVPIPE_TORCH)" >&2; exit 2; }
        echo "usvpipe install: keeping $("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)') in $VENV" >&2 ;;
    cpu)
        if _have_torch && "$VENV/bin/python" -c 'import sys, torch; sys.exit(0 if "+cpu" in torch.__version__ else 1)'; then
            echo "usvpipe install: CPU torch already in $VENV" >&2
        elif _cpu_wheel_served; then
            echo "usvpipe install: torch $TORCH_VERSION, CPU build (served by your pip configuration; ~750 MB installed)" >&2
            "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION"
        else
            echo "usvpipe install: torch $TORCH_VERSION, CPU build from $CPU_INDEX (~200 MB download, ~750 MB installed)" >&2
            "$VENV/bin/python" -m pip install -q --index-url "$CPU_INDEX" "torch==$TORCH_VERSION"
        fi ;;
    pypi)
        _have_torch || {
            echo "usvpipe install: torch $TORCH_VERSION from PyPI (on Linux: the CUDA build with its NVIDIA libraries, several GB)" >&2
            "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION"; } ;;
    *)
        echo "usvpipe: error: USVPIPE_TORCH=$choice (fix: use auto, keep, cpu or pypi)" >&2; exit 2 ;;
esac
"$VENV/bin/python" -m pip install -q -e ".${1:+[$1]}"
export MPLBACKEND=Agg
# UMAP's numba kernels compile on first use (13 s of the demo's first run on 2 cores); do it once
# here, where it is part of installing, and numba keeps the result on disk for every later run.
if [ ! -e "$VENV/.usvpipe-umap-warm" ]; then
    echo "usvpipe install: compiling UMAP's numba code once (about 15 s on 2 cores; later runs reuse it)" >&2
    "$VENV/bin/python" -c "from usvpipe.viz import warm_up; warm_up()" 2>/dev/null && touch "$VENV/.usvpipe-umap-warm" \
        || echo "usvpipe install: UMAP warm-up failed; the first UMAP run will compile instead" >&2
fi
