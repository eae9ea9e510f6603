"""The one error type users see: a message that names the file or parameter and what to do."""

import math


class NolaError(Exception):
    """Raised for bad input or stale artifacts; stages print it without a traceback."""


class DatasetError(NolaError, ValueError):
    """A dataset that cannot be read as configured, worded for the user."""


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
