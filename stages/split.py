"""Stage split: the dataset -> unlabeled pool, test split, labels (for evaluation only), classes."""
from pathlib import Path

from pipeline import datasets
from pipeline.params import load_dataset
from pipeline.stage import log, run


def main(dataset: str, out_dir: Path, params: Path = Path("params.yaml")) -> None:
    data = load_dataset(params, dataset).data
    collection = datasets.create_dataset(data)
    datasets.write_split(collection, out_dir)
    log.info("split@%s: %d classes, %d pool images, %d test images -> %s",
             dataset, len(collection.classes), len(collection.pool), len(collection.test), out_dir)


if __name__ == "__main__":
    run(main)
