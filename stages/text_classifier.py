"""Stage text_classifier: descriptions + dataset templates -> CDE and class-name classifiers."""

from pathlib import Path

from pipeline.core.artifacts import read_json, write_tensors
from pipeline.core.params import ClipParams, load_dataset, load_section
from pipeline.core.stage import log, run
from pipeline.describe.descriptions import load_descriptions
from pipeline.method import text_classifier as tc
from pipeline.models.factory import clip_identity, create_clip


def main(
    dataset: str, classes_json: Path, descriptions_json: Path, out: Path, params: Path = Path("params.yaml")
) -> None:
    clip = load_section(params, "clip", ClipParams)
    templates = load_dataset(params, dataset).templates
    classes = read_json(classes_json)["classes"]
    descriptions = load_descriptions(descriptions_json, classes)
    model, _, tokenizer = create_clip(clip)
    cde = tc.build_classifier(model, tokenizer, classes, tc.cde_texts(classes, templates, descriptions))
    zeroshot = tc.build_classifier(model, tokenizer, classes, tc.template_texts(classes, templates))
    logit_scale = model.logit_scale.detach().exp().reshape(1).float()
    write_tensors(
        out, {"cde": cde, "zeroshot": zeroshot, "logit_scale": logit_scale}, {**clip_identity(clip), "classes": classes}
    )
    log.info("text_classifier: %d x %d CDE matrix -> %s", *cde.shape, out)


if __name__ == "__main__":
    run(main)
