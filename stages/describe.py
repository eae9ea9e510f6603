"""Stage describe: class names (+ the domain's prompt file) -> descriptions.json (class -> sentences)."""

from pathlib import Path

from pipeline.core.artifacts import read_classes, write_json
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.describe.descriptions import describe_classes


def main(classes_json: Path, prompts: Path, out: Path, params: Path = Path("params.yaml")) -> None:
    describe = load_params(params).describe
    classes = read_classes(classes_json)
    doc = describe_classes(describe, classes, prompts)
    write_json(out, doc)
    log.info(
        "describe: %d sentences for %d classes -> %s", sum(map(len, doc["descriptions"].values())), len(classes), out
    )
    if doc.get("cleaning"):
        log.info("describe: cleaning %s", doc["cleaning"])
    if doc.get("fallback"):
        log.warning("describe: no usable description, templates used instead: %s", doc["fallback"])


if __name__ == "__main__":
    run(main)
