"""Image collections: one factory, :func:`create_dataset`, chosen by ``data.source``.

Every source resolves to a :class:`Collection`: an image root, the class names, an unlabeled
pool and a labeled test split, each a list of paths relative to the root. Pool labels, when a
source knows them, are kept apart in ``pool_labels`` and only evaluation reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.core.artifacts import file_sha256, read_json, read_table, write_json, write_table
from pipeline.core.errors import DatasetError
from pipeline.core.params import DataParams
from pipeline.data import synthetic
from pipeline.data.benchmarks import BENCHMARKS, Benchmark, clean_class_name
from pipeline.data.images import IMAGE_SUFFIXES

__all__ = ["BENCHMARKS", "Collection", "DatasetError", "clean_class_name", "create_dataset"]


@dataclass
class Collection:
    root: Path
    classes: list[str]
    pool: list[str]
    test: list[str]
    test_labels: list[int]
    pool_labels: dict[str, int] = field(default_factory=dict)
    seeded_split: bool = False  # the test split was drawn by stratified_split, not given by the source
    classes_from: str = "data.classes"  # where the class names came from, for messages

    @classmethod
    def from_pairs(
        cls,
        root: Path,
        classes: list[str],
        pool: list[tuple[str, int | None]],
        test: list[tuple[str, int]],
        **kw: Any,
    ) -> Collection:
        """From (path, label) pairs of the pool (label None: unlabeled) and of the test split."""
        return cls(
            root=root,
            classes=classes,
            pool=[p for p, _ in pool],
            test=[p for p, _ in test],
            test_labels=[int(label) for _, label in test],
            pool_labels={p: int(label) for p, label in pool if label is not None},
            **kw,
        )

    @property
    def labeled(self) -> bool:
        """Whether any image has a label: an unlabeled collection has a pool and no test split."""
        return bool(self.test or self.pool_labels)


def is_image(path: Path, root: Path) -> bool:
    """An image file under ``root``: hidden files and folders (.DS_Store, ._x.jpg) are not images.
    A broken link counts, so that the split stage reports it rather than silently leaving it out."""
    rel = path.relative_to(root)
    return path.suffix.lower() in IMAGE_SUFFIXES and not any(p.startswith(".") for p in rel.parts) and not path.is_dir()


def find_images(root: Path) -> list[str]:
    """Every image under ``root``, searched recursively, as sorted paths relative to ``root``."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if is_image(p, root))


def scan_folder(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """``root/<class>/<image>``: class folders in sorted order, images by relative path."""
    if not root.is_dir():
        raise DatasetError(f"data.root = {str(root)!r}: no such folder; point it at root/<class>/<images>")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(f"data.root = {str(root)!r}: no class folders inside (expected root/<class>/<images>)")
    items = []
    for label, folder in enumerate(folders):
        items += [(f"{folder.name}/{p}", label) for p in find_images(folder)]
    return [f.name for f in folders], items


def stratified_split(items: list[tuple[str, int]], test_fraction: float, seed: int):
    """Seeded per-class split for datasets without an official one."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[str]] = {}
    for path, label in items:
        by_class.setdefault(label, []).append(path)
    pool, test = [], []
    for label in sorted(by_class):
        paths = sorted(by_class[label])
        order = rng.permutation(len(paths))
        n_test = int(round(test_fraction * len(paths))) if len(paths) > 1 else 0
        test += [(paths[i], label) for i in order[:n_test]]
        pool += [(paths[i], label) for i in order[n_test:]]
    return sorted(pool), sorted(test)


def _name_classes(folder_names: list[str], params: DataParams, readable: dict[str, str] | None = None) -> list[str]:
    if params.classes is not None:
        if len(params.classes) != len(folder_names):
            raise DatasetError(
                f"data.classes has {len(params.classes)} names but {params.root} has "
                f"{len(folder_names)} class folders ({', '.join(folder_names)}); "
                "give one name per folder, in sorted folder order"
            )
        return list(params.classes)
    readable = readable or {}
    return [readable.get(n, clean_class_name(n)) for n in folder_names]


def _from_items(root: Path, classes: list[str], items: list[tuple[str, int]], params: DataParams) -> Collection:
    if params.split_file:
        return _coop_split(root, params)
    pool, test = stratified_split(items, params.test_fraction, params.seed)
    return Collection.from_pairs(root, classes, pool, test, seeded_split=True)


def _coop_split(root: Path, params: DataParams) -> Collection:
    """A CoOp split JSON: {"train": [[path, label, classname], ...], "val": ..., "test": ...}."""
    if not Path(params.split_file).is_file():
        raise DatasetError(
            f"data.split_file = {params.split_file!r}: no such file; CoOp's split JSONs (split_zhou_<Dataset>.json) "
            "are linked from CoOp's DATASETS.md (github.com/KaiyangZhou/CoOp); or remove data.split_file"
        )
    split = read_json(params.split_file)
    try:
        train, test = split["train"], split["test"]
        names: dict[int, str] = {}
        for _path, label, name in [*train, *test]:
            names.setdefault(int(label), name)
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetError(
            f"data.split_file = {params.split_file!r}: expected CoOp format "
            '{"train": [[path, label, classname], ...], "test": [...]} (' + str(err) + ")"
        ) from None
    if sorted(names) != list(range(len(names))):
        raise DatasetError(f"data.split_file = {params.split_file!r}: labels must be 0..C-1, got {sorted(names)}")
    classes = list(params.classes) if params.classes else [clean_class_name(names[i]) for i in range(len(names))]
    return Collection.from_pairs(
        root, classes, [(p, label) for p, label, _ in train], [(p, label) for p, label, _ in test]
    )


def _is_flat(root: Path) -> bool:
    """A folder of unlabeled images: image files right in it, or no sub-folder that could be a class."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    return any(is_image(p, root) for p in entries) or not any(p.is_dir() for p in entries)


def unlabeled_classes(params: DataParams, where: str) -> tuple[list[str], str]:
    """The class names of a collection without labels: data.classes, else data.classes_file."""
    if params.classes is not None:
        return list(params.classes), "data.classes"
    if params.classes_file:
        path = Path(params.classes_file)
        if not path.is_file():
            raise DatasetError(f"data.classes_file = {params.classes_file!r}: file not found")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return names, "data.classes_file"
    raise DatasetError(
        f"{where} has no labels, so the class names must be given: set data.classes: [name, ...] "
        "or data.classes_file: a text file with one name per line"
    )


def _unlabeled(root: Path, ids: list[str], params: DataParams) -> Collection:
    """Every image in the pool, no test split: nothing here has a label."""
    classes, source = unlabeled_classes(params, f"data.root = {str(root)!r}")
    if not ids:
        raise DatasetError(f"data.root = {str(root)!r}: no images inside (looked for {', '.join(IMAGE_SUFFIXES)})")
    return Collection(root=root, classes=classes, pool=ids, test=[], test_labels=[], classes_from=source)


def _folder(params: DataParams) -> Collection:
    """``root/<class>/<images>``; or an unlabeled collection in any layout when the root holds images
    itself or the class names come from data.classes_file (which only unlabeled collections use)."""
    root = Path(params.root)
    if root.is_dir() and params.source == "folder" and (params.classes_file or _is_flat(root)):
        return _unlabeled(root, find_images(root), params)
    folder_names, items = scan_folder(root)
    classes = _name_classes(folder_names, params)
    collection = _from_items(root, classes, items, params)
    collection.classes_from = "data.classes" if params.classes is not None else f"the class folders of {root}"
    return collection


def _manifest(params: DataParams) -> Collection:
    """CSV or parquet with columns path[, label][, split]; paths relative to data.root."""
    import pandas as pd

    if not params.manifest:
        raise DatasetError("data.source = 'manifest' needs data.manifest (a CSV or parquet file with a 'path' column)")
    path = Path(params.manifest)
    if not path.is_file():
        raise DatasetError(f"data.manifest = {params.manifest!r}: file not found")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)
    if "path" not in frame.columns:
        raise DatasetError(f"{path}: needs a 'path' column, has {list(frame.columns)}")
    has_label = "label" in frame.columns
    names = sorted({str(v) for v in frame["label"] if str(v)}) if has_label else []
    if names and not params.classes:
        classes, source = [clean_class_name(n) for n in names], f"the labels of {path}"
    else:
        classes, source = unlabeled_classes(params, f"data.manifest = {params.manifest!r}")
    index = {n: i for i, n in enumerate(names)}
    rows = [
        (str(p), index.get(str(lab)) if has_label else None)
        for p, lab in zip(frame["path"], frame["label"] if has_label else [None] * len(frame))
    ]
    seeded = "split" not in frame.columns
    if not seeded:
        split = [str(s) for s in frame["split"]]
        pool = sorted((p, lab) for (p, lab), s in zip(rows, split) if s in ("train", "pool"))
        test = sorted((p, lab) for (p, lab), s in zip(rows, split) if s == "test")
    else:
        pool, test = stratified_split([r for r in rows if r[1] is not None], params.test_fraction, params.seed)
        pool = sorted(pool + [r for r in rows if r[1] is None])
    unlabeled_test = [p for p, lab in test if lab is None]
    if unlabeled_test:
        raise DatasetError(f"{path}: test rows need a label; unlabeled: {unlabeled_test[:3]}")
    return Collection.from_pairs(
        Path(params.root),
        classes,
        pool,
        test,
        seeded_split=seeded,
        classes_from=source,
    )


def image_root(params: DataParams) -> Path:
    """The folder that image ids are relative to (torchvision nests most datasets a level or two down)."""
    spec = BENCHMARKS.get(params.source)
    return Path(params.root) / spec.images if spec else Path(params.root)


def fetch(params: DataParams) -> Path:
    """Make the images of built-in sources exist under ``data.root`` (download or generate)."""
    spec = BENCHMARKS.get(params.source)
    if params.source == "synthetic":
        if not Path(params.root).is_dir():
            synthetic.generate(
                params.root, params.synthetic_classes, params.synthetic_per_class, params.synthetic_size, params.seed
            )
    elif spec is not None and not (image_root(params) / (spec.split_dirs or ("",))[0]).is_dir():
        if spec.download is None or not params.download:
            reason = "data.download is false" if spec.download else "it cannot be downloaded automatically"
            raise DatasetError(f"{spec.title} not found under {image_root(params)} and {reason}: {spec.get}")
        _download(spec, Path(params.root))
    return Path(params.root)


def _download(spec: Benchmark, root: Path) -> None:
    """Run the spec's download; on failure (no network, a server error) say what failed and the
    ways round it, and remove the folders the attempt created and left empty."""
    here = root.absolute()
    created = [f for f in (here, *here.parents) if not f.exists()]  # data.root and the folders above it to make
    before = set(here.rglob("*"))  # only data.root's own tree: the dataset is not there yet
    try:
        spec.download(root)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; torchvision raises RuntimeError
        for folder in sorted((p for p in here.rglob("*") if p not in before), reverse=True) + created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise DatasetError(
            f"{spec.title}: the download into data.root = {str(root)!r} failed ({err}); check the network "
            f"(and a proxy: HTTPS_PROXY), then rerun `nola fetch-data`, or copy the dataset there by hand "
            f"and set data.download: false (README: Offline and air-gapped use)"
        ) from None


def _split_folders(root: Path, dirs: tuple[str, str]) -> tuple[list[str], list, list]:
    """``root/<pool dir>/<class>/...`` and ``root/<test dir>/<class>/...`` with the same class folders."""
    (names, pool), (test_names, test) = (scan_folder(root / d) for d in dirs)
    if names != test_names:
        raise DatasetError(
            f"{root / dirs[0]} and {root / dirs[1]} have different class folders; "
            f"only in one of them: {sorted(set(names) ^ set(test_names))[:5]}"
        )
    pool, test = ([(f"{d}/{p}", label) for p, label in items] for d, items in zip(dirs, (pool, test)))
    return names, pool, test


def _drop_classes(names: list[str], items: list, excluded: tuple[str, ...]) -> tuple[list[str], list]:
    """Remove excluded classes and their images, renumbering the labels of the rest."""
    keep = [i for i, n in enumerate(names) if n not in excluded]
    new_label = {old: new for new, old in enumerate(keep)}
    return [names[i] for i in keep], [(p, new_label[label]) for p, label in items if label in new_label]


def _benchmark(params: DataParams) -> Collection:
    """One of the paper's datasets in the layout torchvision downloads (see pipeline.data.benchmarks)."""
    spec: Benchmark = BENCHMARKS[params.source]
    root = image_root(params)
    top = Path(params.root)
    if not top.is_dir() or not any(top.iterdir()) or (spec.read is None and spec.download and not root.is_dir()):
        raise DatasetError(
            f"data.root = {params.root!r}: {spec.title} is not there (expected its images under {root}); "
            "download it with `nola fetch-data` (or copy it there: `nola datasets " + spec.name + "`)"
        )
    if params.split_file:
        return _coop_split(root, params)
    if spec.read is not None:
        listing = spec.read(Path(params.root))
        names, pool, test = listing.classes, listing.pool, listing.test
    elif spec.split_dirs is not None:
        names, pool, test = _split_folders(root, spec.split_dirs)
    else:
        (names, pool), test = scan_folder(root), None
        names, pool = _drop_classes(names, pool, spec.exclude)
    classes = _name_classes(names, params, dict(zip(names, spec.class_names(Path(params.root), names))))
    if test is None:
        return _from_items(root, classes, pool, params)
    return Collection.from_pairs(root, classes, pool, test)


SOURCES: dict[str, Callable[[DataParams], Collection]] = {
    "folder": _folder,
    "synthetic": _folder,
    "manifest": _manifest,
    **{name: _benchmark for name in BENCHMARKS},
}


def check_classes(classes: list[str], source: str) -> None:
    """Refuse a class list no classifier can learn from: one class (every image 'correct'), a name
    given twice, or names that differ only in case (CLIP's tokenizer lower-cases them: the same text)."""
    if len(classes) < 2:
        raise DatasetError(
            f"{source}: {len(classes)} class name(s) {classes}; a classifier needs at least two classes to choose from"
        )
    twins = sorted({c for c in classes if classes.count(c) > 1})
    if twins:
        raise DatasetError(
            f"{source}: class names {twins} occur more than once (folder names that differ only by '_' or '-'?); "
            "name each class once"
        )
    folded: dict[str, list[str]] = {}
    for c in classes:
        folded.setdefault(c.casefold(), []).append(c)
    same = [names for names in folded.values() if len(names) > 1]
    if same:
        raise DatasetError(
            f"{source}: class names {same[0]} differ only in case, which CLIP reads as the same text; "
            "keep one of them or rename the others"
        )


def create_dataset(params: DataParams) -> Collection:
    collection = SOURCES[params.source](params)
    check_classes(collection.classes, collection.classes_from)
    return collection


def read_eval_labels(params: DataParams, classes: list[str], ids: list[str]) -> dict[str, int]:
    """``data.eval_labels``: a CSV of path,label for a few pool images -> image id -> class index.
    Only evaluate reads it; training and model selection never see it."""
    import pandas as pd

    if not params.eval_labels:
        return {}
    path = Path(params.eval_labels)
    if not path.is_file():
        raise DatasetError(f"data.eval_labels = {params.eval_labels!r}: file not found")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    where = f"data.eval_labels = {params.eval_labels!r}"
    if not {"path", "label"} <= set(frame.columns):
        raise DatasetError(f"{where}: needs the columns path,label, has {list(frame.columns)}")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({lab for lab in frame["label"] if lab not in index})
    if unknown:
        raise DatasetError(f"{where}: labels {unknown[:5]} are not among the classes {classes}")
    known = set(ids)
    missing = [p for p in frame["path"] if p not in known]
    if missing:
        raise DatasetError(
            f"{where}: {len(missing)} paths are not images of the collection "
            f"(paths are relative to data.root), e.g. {missing[:3]}"
        )
    return {p: index[lab] for p, lab in zip(frame["path"], frame["label"])}


def drop_images(collection: Collection, drop: set[str], params: DataParams) -> Collection:
    """The collection without ``drop``. A seeded split is drawn again from what is left, so that
    unusable files never move a good image between the pool and the test split."""
    if not drop:
        return collection
    if collection.seeded_split:
        test_labels = dict(zip(collection.test, collection.test_labels))
        labeled = [(p, lab) for p, lab in [*collection.pool_labels.items(), *test_labels.items()] if p not in drop]
        unlabeled = [(p, None) for p in collection.pool if p not in collection.pool_labels and p not in drop]
        pool, test = stratified_split(labeled, params.test_fraction, params.seed)
        pool = sorted(pool + unlabeled)
    else:
        pool = [(p, collection.pool_labels.get(p)) for p in collection.pool if p not in drop]
        test = [(p, lab) for p, lab in zip(collection.test, collection.test_labels) if p not in drop]
    return Collection.from_pairs(
        collection.root,
        collection.classes,
        pool,
        test,
        seeded_split=collection.seeded_split,
        classes_from=collection.classes_from,
    )


def write_split(collection: Collection, out_dir: str | Path, hashes: dict[str, str] | None = None) -> None:
    """pool.parquet and test.parquet (id + content hash, no labels), labels.parquet, classes.json.

    The content hash makes every downstream stage rerun when an image's bytes change; ``hashes``
    passes the ones already computed.
    """
    out = Path(out_dir)
    hashes = hashes or {}
    for name, ids in (("pool", collection.pool), ("test", collection.test)):
        digests = [hashes.get(i) or file_sha256(collection.root / i) for i in ids]
        write_table(out / f"{name}.parquet", pa.table({"id": ids, "sha256": digests}))
    label_ids = [*collection.pool_labels, *collection.test]
    write_table(
        out / "labels.parquet",
        pa.table(
            {
                "id": label_ids,
                "split": ["pool"] * len(collection.pool_labels) + ["test"] * len(collection.test),
                "label": pa.array([*collection.pool_labels.values(), *collection.test_labels], type=pa.int32()),
            }
        ),
    )
    write_json(out / "classes.json", {"classes": collection.classes})


def read_ids(split_file: str | Path) -> list[str]:
    """The image ids of a split written by :func:`write_split`."""
    return read_table(split_file, columns=["id"])[0].column("id").to_pylist()


def read_labels(labels_file: str | Path) -> dict[str, int]:
    """Image id -> class index, from the labels file of :func:`write_split` (evaluation only)."""
    table = read_table(labels_file, columns=["id", "label"])[0]
    return dict(zip(table.column("id").to_pylist(), table.column("label").to_pylist()))
