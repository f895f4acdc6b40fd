# Sourced by every scripts/slurm/*.sbatch job: the site set-up, the Python that runs usvpipe,
# and a header in the job log. Not a job script itself.
#
# The job's environment decides (chain.sh passes these with --export; set them yourself when
# you call sbatch directly):
#   USVPIPE_SETUP   a file sourced first, for what the cluster needs before Python runs:
#                   `module load ...`, `source ~/miniforge3/etc/profile.d/conda.sh && conda
#                   activate usv`, `source ~/venvs/usv/bin/activate`, scratch variables
#   USVPIPE_PYTHON  the interpreter that has usvpipe installed (default: python3 on PATH
#                   after USVPIPE_SETUP); usvpipe and torchrun are run as `$PY -m ...`, so
#                   neither needs to be on PATH
#   USVPIPE_DEVICE  cpu | cuda | auto for training, encoding and MMD (default: cuda when
#                   SLURM allocated GPUs to the job, else cpu)

if [ -n "${USVPIPE_SETUP:-}" ]; then
  if [ ! -r "$USVPIPE_SETUP" ]; then
    echo "usvpipe job ${SLURM_JOB_ID:-?} on $(hostname): USVPIPE_SETUP=$USVPIPE_SETUP is not readable (fix: an absolute path on a file system the compute nodes see)" >&2
    exit 2
  fi
  # shellcheck disable=SC1090
  source "$USVPIPE_SETUP"
fi

PY=${USVPIPE_PYTHON:-python3}
if ! USVPIPE_VERSION=$("$PY" -c 'import usvpipe; print(usvpipe.__version__, usvpipe.__file__)' 2>/dev/null); then
  echo "usvpipe job ${SLURM_JOB_ID:-?} on $(hostname): '$PY' cannot import usvpipe (fix: USVPIPE_PYTHON=/path/to/venv/bin/python, or load the environment in USVPIPE_SETUP)" >&2
  exit 2
fi

# GPUs SLURM gave this job on this node (0 on CPU-only allocations). SLURM_GPUS_ON_NODE is
# set when --gpus-per-node/--gres=gpu asked for them.
USVPIPE_JOB_GPUS=${SLURM_GPUS_ON_NODE:-0}
case $USVPIPE_JOB_GPUS in '' | *[!0-9]*) USVPIPE_JOB_GPUS=0 ;; esac
if [ -n "${USVPIPE_DEVICE:-}" ]; then
  USVPIPE_JOB_DEVICE=$USVPIPE_DEVICE
elif [ "$USVPIPE_JOB_GPUS" -gt 0 ]; then
  USVPIPE_JOB_DEVICE=cuda
else
  USVPIPE_JOB_DEVICE=cpu
fi
# CPUs of this job on this node: what SLURM allocated, never the node's total.
USVPIPE_JOB_CPUS=${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-1}}

usvpipe() { "$PY" -m usvpipe "$@"; }

echo "usvpipe job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)} on $(hostname)," \
     "restart ${SLURM_RESTART_COUNT:-0}: $PY, usvpipe $USVPIPE_VERSION;" \
     "cpus=$USVPIPE_JOB_CPUS gpus=$USVPIPE_JOB_GPUS device=$USVPIPE_JOB_DEVICE; cwd $(pwd)"
