"""Stage text_classifier: descriptions + dataset templates -> CDE and class-name classifiers."""

from pathlib import Path

from pipeline.core.artifacts import read_classes
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.describe.descriptions import load_descriptions
from pipeline.method import text_classifier as tc
from pipeline.models.factory import clip_identity, create_clip


def main(
    dataset: str, classes_json: Path, descriptions_json: Path, out: Path, params: Path = Path("params.yaml")
) -> None:
    p = load_params(params)
    templates = p.dataset(dataset).templates
    classes = read_classes(classes_json)
    descriptions = load_descriptions(descriptions_json, classes)
    model, _, tokenizer = create_clip(p.clip)
    classifiers = tc.build_classifiers(model, tokenizer, classes, templates, descriptions)
    tc.write_classifiers(out, classifiers, clip_identity(p.clip))
    log.info("text_classifier: %d x %d CDE matrix -> %s", *classifiers.cde.shape, out)


if __name__ == "__main__":
    run(main)
