#!/bin/bash
# Submit the whole pipeline as a dependency chain:
#   segment (job array) -> merge -> train (GPU) -> encode/umap/mmd (GPU)
#
#   bash scripts/slurm/chain.sh /data/wavs /scratch/run usvpipe.toml [N_TASKS]
#
# Every step is resumable: if one fails, fix the cause and run this script again;
# finished recordings, epochs and stages are not redone.
set -euo pipefail
IN_DIR=${1:?usage: chain.sh IN_DIR RUN_DIR CONFIG [N_TASKS]}
RUN_DIR=${2:?missing RUN_DIR}
CONFIG=${3:?missing CONFIG (create one with: usvpipe init)}
N_TASKS=${4:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p logs "$RUN_DIR"
seg=$(sbatch --parsable --array=0-$((N_TASKS - 1)) "$HERE/segment_array.sbatch" "$IN_DIR" "$RUN_DIR/store" "$CONFIG")
# afterany: merge even if a few tasks failed, so the good recordings are analysed;
# failed recordings are listed in $RUN_DIR/store/errors.csv and manifest.json.
merge=$(sbatch --parsable --dependency=afterany:$seg --job-name=usv-merge --time=00:30:00 --mem=4G \
        --output=logs/%x-%j.out --wrap "usvpipe merge '$RUN_DIR/store'")
train=$(sbatch --parsable --dependency=afterok:$merge "$HERE/train_1node.sbatch" "$RUN_DIR/store" "$RUN_DIR/model" --config "$CONFIG")
analyse=$(sbatch --parsable --dependency=afterok:$train "$HERE/analyse.sbatch" "$RUN_DIR" "$CONFIG")
echo "submitted: segment=$seg merge=$merge train=$train analyse=$analyse"
