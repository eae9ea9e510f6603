"""Stage check_params: params.yaml -> a marker file, after checking every key and model name.

Every other stage depends on the marker, so this check runs first whenever params.yaml changes,
before any command that holds a dataset name. The marker's bytes never change, so passing the
check never makes another stage rerun.
"""

from pathlib import Path

from pipeline.core.artifacts import write_json
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.models.factory import MODEL_NAME_CHECKS


def main(marker: Path, params: Path = Path("params.yaml")) -> None:
    checked = load_params(params, MODEL_NAME_CHECKS)
    write_json(marker, {"checked": "params.yaml"})
    log.info("check_params: %s is valid (%d datasets: %s)", params, len(checked.datasets), ", ".join(checked.datasets))


if __name__ == "__main__":
    run(main)
