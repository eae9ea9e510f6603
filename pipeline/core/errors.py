"""The one error type users see: a message that names the file or parameter and what to do."""

import errno
import math
import shutil
from pathlib import Path


class NolaError(Exception):
    """Raised for bad input or stale artifacts; stages print it without a traceback."""


class DatasetError(NolaError, ValueError):
    """A dataset that cannot be read as configured, worded for the user."""


class DiskFullError(NolaError, OSError):
    """A write that ran out of disk space."""


def disk_full(err: BaseException, path: str | Path) -> DiskFullError | None:
    """``err`` worded for the user when it means "no space left on device", else None: an OSError
    with errno 28, or the same failure seen through pyarrow or safetensors (their own error types,
    errno only in the text)."""
    text = str(err)
    if not (
        (isinstance(err, OSError) and err.errno == errno.ENOSPC)
        or "os error 28" in text.lower()
        or "code: 28" in text
        or "No space left on device" in text
    ):
        return None
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free / 2**20
    return DiskFullError(
        f"{path}: disk full while writing it ({free:.1f} MiB free on the disk of {folder}); free some space "
        "there (DVC's cache: dvc gc; old runs: dvc exp gc) and rerun: finished artifacts are kept, "
        "this one was not written"
    )


class TrainingError(NolaError, RuntimeError):
    """Training that cannot go on, worded for the user."""


def check_loss(loss: float, stage: str, epoch: int, step: int, lr: float, lr_key: str, inputs: str) -> None:
    """Stop at a NaN / inf loss, naming the step and the likely cause: at the first step nothing
    was updated yet, so the inputs are at fault; later, the optimisation diverged."""
    if math.isfinite(loss):
        return
    if step == 1:
        cause = f"before any update, so an input is not finite: {inputs}"
    else:
        cause = f"after {step - 1} updates at lr {lr:.3g}: training diverged; lower {lr_key}"
    raise TrainingError(f"{stage}: loss is {loss} at epoch {epoch}, step {step}, {cause}")
