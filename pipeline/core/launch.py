"""Start a stage as one process or under torchrun, as the ``compute`` params say.

    python -m pipeline.core.launch stages.features clip eurosat ... [--params params.yaml]

dvc.yaml runs the features and tune stages through this module, so moving from one process to
several GPUs or nodes is an edit of ``compute`` in params.yaml, never of dvc.yaml.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from pipeline.core.errors import NolaError
from pipeline.core.params import ComputeParams, load_params


def params_file(args: list[str]) -> Path:
    """The stage's own ``--params`` option, else params.yaml."""
    for i, arg in enumerate(args):
        if arg == "--params" and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--params="):
            return Path(arg.split("=", 1)[1])
    return Path("params.yaml")


def command(compute: ComputeParams, module: str, args: list[str]) -> list[str] | None:
    """The torchrun (or srun + torchrun) command line; None for a single process."""
    if compute.nproc * compute.nnodes == 1:
        return None
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={compute.nproc}",
        f"--nnodes={compute.nnodes}",
    ]
    if compute.nnodes == 1 and compute.launcher == "torchrun":
        torchrun.append("--standalone")  # a free local port, no rendezvous settings needed
    else:
        torchrun += [
            f"--rdzv-backend={compute.rdzv_backend}",
            f"--rdzv-endpoint={compute.rdzv_endpoint}",
            f"--rdzv-id={compute.rdzv_id}",
        ]
    torchrun += ["-m", module, *args]
    if compute.launcher == "srun":
        return ["srun", f"--nodes={compute.nnodes}", "--ntasks-per-node=1", *torchrun]
    return torchrun


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m pipeline.core.launch MODULE [ARGS...]")
    module, args = argv[0], argv[1:]
    try:
        compute = load_params(params_file(args)).compute
    except NolaError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    cmd = command(compute, module, args)
    if cmd is None:
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("NOLA_THREADS", "2"))
        os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
