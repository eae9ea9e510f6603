"""Stage split: the dataset -> unlabeled pool, test split, labels (for evaluation only), classes,
and skipped.json (every listed file that cannot be used, with the reason)."""

from pathlib import Path

from pipeline.core.artifacts import write_json
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.data import datasets, screening


def main(dataset: str, out_dir: Path, params: Path = Path("params.yaml")) -> None:
    data = load_params(params).dataset(dataset).data
    screened = screening.screen(datasets.create_dataset(data), data)
    report = out_dir / "skipped.json"
    write_json(report, screened.report(data.bad_images))
    screening.enforce(screened, data.bad_images, report)
    datasets.write_split(screened.collection, out_dir, screened.hashes)
    log.info("split@%s: %s -> %s", dataset, screened.summary(), out_dir)
    for name in screened.empty_classes():
        log.warning(
            "split@%s: class %r has no image (an empty folder, or all its files skipped); it stays a "
            "class, and gets pseudo-labels only if CLIP predicts it",
            dataset,
            name,
        )


if __name__ == "__main__":
    run(main)
