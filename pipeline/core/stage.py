"""What every stage entry point shares: error reporting, logging and deterministic threading."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import typer

from pipeline.core.errors import NolaError, disk_full

log = logging.getLogger("nola")


def run(main: Callable) -> None:
    """Run one function as a typer command (a stage entry point)."""

    @functools.wraps(main)
    def stage(*args, **kwargs):
        main(*args, **kwargs)
        _record_computation()

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(stage)
    deterministic_torch()
    run_app(app)


def _record_computation() -> None:
    """Append this stage's command line to $NOLA_STAGE_LOG, if set: an audit trail of what really
    computed (DVC restoring from its cache never runs a stage, so never writes a line)."""
    path = os.environ.get("NOLA_STAGE_LOG")
    if path and os.environ.get("RANK", "0") == "0":  # under torchrun: one line per stage, not per process
        with open(path, "a", encoding="utf-8") as f:
            f.write(" ".join([Path(sys.argv[0]).stem, *sys.argv[1:]]) + "\n")


def run_app(app: typer.Typer) -> None:
    """A :class:`NolaError` or a full disk prints one clear message and exits 2, no traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    log.setLevel(os.environ.get("NOLA_LOG", "INFO"))
    try:
        app()
    except NolaError as err:
        print(f"error: {message(err)}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # a full disk met outside the artifact writers (caches, part files)
        if (full := disk_full(err, err.filename or Path.cwd() / "?")) is None:
            raise
        print(f"error: {full}", file=sys.stderr)
        sys.exit(2)


def message(err: NolaError) -> str:
    """The error's own message. Raised in a DataLoader worker, it comes back re-created with the
    worker's traceback as its text; the message is what follows the traceback's last 'Type: '."""
    text = str(err)
    if "Traceback (most recent call last)" not in text:
        return text
    return text.rsplit(f"{type(err).__module__}.{type(err).__qualname__}: ", 1)[-1]


def deterministic_torch() -> None:
    """A fixed intra-op thread count keeps float reductions, hence artifacts, byte-identical."""
    import torch

    torch.set_num_threads(int(os.environ.get("NOLA_THREADS", "2")))
    torch.use_deterministic_algorithms(True, warn_only=True)
