"""The self-test's hold on the first attempt of its training job (scripts/slurm/selftest.sh).

The requeue check needs the first attempt to be interrupted after a checkpoint and before the
last epoch. Waiting for a checkpoint file and then signalling raced with the machine's speed:
a fast run finished all its epochs first ("resumed after epoch 12 of 12"). With this folder on
PYTHONPATH and USVPIPE_SELFTEST_HOLD=OUT_DIR, the attempt that trains into OUT_DIR with
SLURM_RESTART_COUNT 0 (or unset) writes ``OUT_DIR.held`` (the epoch of its checkpoint) after
its first checkpoint and then waits until it is killed: the requeue always finds it there, and
the requeued attempt (SLURM_RESTART_COUNT 1) trains on unheld. Python runs ``sitecustomize``
at start-up; any other process (another job, another OUT_DIR) is left alone.
"""
import os

_HOLD = os.environ.get("USVPIPE_SELFTEST_HOLD", "")


def _install(hold_dir: str) -> None:
    import time
    from pathlib import Path

    from usvpipe.vae import training

    trainer = training._Trainer
    save = trainer._save_checkpoint

    def save_then_hold(self, epoch, rng_states):
        save(self, epoch, rng_states)
        if Path(self.out_dir).resolve() != Path(hold_dir).resolve():
            return
        marker = Path(hold_dir + ".held")
        marker.write_text(f"{epoch}\n")
        print(f"selftest hold: checkpoint after epoch {epoch} written; waiting for the requeue", flush=True)
        while True:  # until SLURM stops the job (SIGTERM, then SIGKILL)
            time.sleep(1)

    trainer._save_checkpoint = save_then_hold


# only the training job's first attempt (the chain names it usv-train; outside SLURM: a test)
if (_HOLD and os.environ.get("SLURM_RESTART_COUNT", "0") in ("", "0")
        and os.environ.get("SLURM_JOB_NAME", "usv-train") == "usv-train"):
    try:
        _install(_HOLD)
    except ImportError:  # an interpreter without usvpipe (a probe of _env.sh): nothing to hold
        pass
