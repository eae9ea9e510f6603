"""What every stage entry point shares: error reporting, logging and deterministic threading."""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

import typer

from .errors import NolaError

log = logging.getLogger("nola")


def run(main: Callable) -> None:
    """Run one function as a typer command (a stage entry point)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(main)
    run_app(app)


def run_app(app: typer.Typer) -> None:
    """A :class:`NolaError` prints one clear message and exits 2, no traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    log.setLevel(os.environ.get("NOLA_LOG", "INFO"))
    _deterministic_torch()
    try:
        app()
    except NolaError as err:
        print(f"error: {message(err)}", file=sys.stderr)
        sys.exit(2)


def message(err: NolaError) -> str:
    """The error's own message. Raised in a DataLoader worker, it comes back re-created with the
    worker's traceback as its text; the message is what follows the traceback's last 'Type: '."""
    text = str(err)
    if "Traceback (most recent call last)" not in text:
        return text
    return text.rsplit(f"{type(err).__module__}.{type(err).__qualname__}: ", 1)[-1]


def _deterministic_torch() -> None:
    """A fixed intra-op thread count keeps float reductions, hence artifacts, byte-identical."""
    import torch

    torch.set_num_threads(int(os.environ.get("NOLA_THREADS", "2")))
    torch.use_deterministic_algorithms(True, warn_only=True)
