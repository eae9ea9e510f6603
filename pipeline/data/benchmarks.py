"""The paper's benchmark datasets: where each lives on disk, how to get it, its prompt domain and templates.

Readers list (image id, label) pairs straight from the layout that torchvision downloads (its
.txt / .json / .mat metadata) instead of going through torchvision's dataset classes: ids stay
paths relative to one image folder (the same paths CoOp's split JSONs use), listing decodes no
image, and nothing is ever unpickled. torchvision is used to download.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from pipeline.core.errors import DatasetError

Items = list[tuple[str, int]]


@dataclass(frozen=True)
class Listing:
    """Raw class names (label order), the pool, and the official test split (None: there is none)."""

    classes: list[str]
    pool: Items
    test: Items | None


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    domain: str
    templates: tuple[str, ...]
    images: str
    """The folder under ``data.root`` that image ids are relative to."""
    get: str
    """How to obtain it, for users."""
    read: Callable[[Path], Listing] | None = None
    """Reads metadata files under ``data.root``; None: ``<images>/<class>/<image>`` folders."""
    split_dirs: tuple[str, str] | None = None
    """Folder layout with an official split: ``<images>/<pool dir>/<class>/...``, ``<test dir>/<class>/...``."""
    exclude: tuple[str, ...] = ()
    names: Callable[[Path], dict[str, str]] = field(default=lambda root: {})
    """Readable names for raw class names, given ``data.root``; the rest go through ``clean``."""
    clean: Callable[[str], str] = field(default=lambda name: clean_class_name(name))
    download: Callable[[Path], None] | None = None
    coop_split: str | None = None
    """The file name of CoOp's split JSON, the split the paper evaluates on (CoOp's DATASETS.md links
    them); its paths are relative to ``images``. None: CoOp uses the dataset's own split."""

    def class_names(self, root: Path, raw: list[str]) -> list[str]:
        readable = self.names(root)
        return [readable.get(n) or self.clean(n) for n in raw]

    def params_entry(self, root: str | None = None, paper: bool = False) -> dict:
        """This dataset's entry under ``datasets:`` in params.yaml, with its defaults; ``paper``:
        with the paper's split (CoOp's split JSON, expected in ``data.root``)."""
        root = root or f"data/{self.name}"
        data = {"source": self.name, "root": root}
        if paper and self.coop_split:
            data["split_file"] = f"{root}/{self.coop_split}"
        return {"data": data, "domain": self.domain, "templates": list(self.templates)}

    def params_yaml(self) -> str:
        return yaml.safe_dump({self.name: self.params_entry()}, sort_keys=False, width=200)


def clean_class_name(name: str) -> str:
    """Folder names as prompt words: underscores and dashes become spaces."""
    return " ".join(name.replace("_", " ").replace("-", " ").split())


def _lower(name: str) -> str:
    return clean_class_name(name).lower()


def _split_camel(name: str) -> str:
    """``ApplyEyeMakeup`` or ``Apply_Eye_Makeup`` -> ``apply eye makeup``."""
    return _lower(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name))


def _sun_name(name: str) -> str:
    """``apartment_building/outdoor`` -> ``outdoor apartment building``."""
    return clean_class_name(" ".join(reversed(name.split("/"))))


def _require(path: Path, dataset: str) -> Path:
    if not path.exists():
        raise DatasetError(
            f"{path}: missing; {dataset} is not in the layout torchvision downloads under data.root "
            f"(see `python -m pipeline datasets`)"
        )
    return path


def _lines(path: Path, dataset: str) -> list[str]:
    return [line.strip() for line in _require(path, dataset).read_text(encoding="utf-8").splitlines() if line.strip()]


def _labelled(
    pool: Iterable[tuple[str, str]], test: Iterable[tuple[str, str]] | None, classes: list[str] | None = None
) -> Listing:
    """(id, class name) pairs -> a Listing; classes sorted by name unless given."""
    pool, test = list(pool), None if test is None else list(test)
    classes = classes or sorted({c for _, c in [*pool, *(test or [])]})
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({c for _, c in [*pool, *(test or [])]} - index.keys())
    if unknown:
        raise DatasetError(f"images labelled with classes missing from the class list: {unknown[:5]}")
    return Listing(
        classes, [(i, index[c]) for i, c in pool], None if test is None else [(i, index[c]) for i, c in test]
    )


def _read_dtd(root: Path) -> Listing:
    labels = root / "dtd" / "dtd" / "labels"
    lines = {split: _lines(labels / f"{split}1.txt", "DTD") for split in ("train", "val", "test")}
    return _labelled(
        ((p, p.split("/")[0]) for p in lines["train"] + lines["val"]), ((p, p.split("/")[0]) for p in lines["test"])
    )


def _loadmat(path: Path, dataset: str) -> dict:
    from scipy.io import loadmat

    return loadmat(_require(path, dataset), squeeze_me=True)


def _read_flowers(root: Path) -> Listing:
    from torchvision.datasets import Flowers102

    base = root / "flowers-102"
    labels = np.atleast_1d(_loadmat(base / "imagelabels.mat", "Flowers102")["labels"])
    sets = _loadmat(base / "setid.mat", "Flowers102")

    def items(*keys: str) -> Items:
        return [(f"image_{int(i):05d}.jpg", int(labels[int(i) - 1]) - 1) for k in keys for i in np.atleast_1d(sets[k])]

    return Listing(list(Flowers102.classes), items("trnid", "valid"), items("tstid"))


def _read_food(root: Path) -> Listing:
    meta = root / "food-101" / "meta"
    splits = {s: json.loads(_require(meta / f"{s}.json", "Food101").read_text()) for s in ("train", "test")}
    return _labelled(*[((f"{p}.jpg", c) for c, paths in splits[s].items() for p in paths) for s in ("train", "test")])


def _read_pets(root: Path) -> Listing:
    annotations = root / "oxford-iiit-pet" / "annotations"
    splits = {
        s: [line.split()[:2] for line in _lines(annotations / f"{s}.txt", "OxfordIIITPet")]
        for s in ("trainval", "test")
    }
    names = {int(label) - 1: image.rsplit("_", 1)[0] for image, label in splits["trainval"] + splits["test"]}
    return Listing(
        [names[i] for i in sorted(names)],
        *[[(f"{image}.jpg", int(label) - 1) for image, label in splits[s]] for s in ("trainval", "test")],
    )


def _read_cars(root: Path) -> Listing:
    base = root / "stanford_cars"
    meta = _loadmat(base / "devkit" / "cars_meta.mat", "StanfordCars")
    classes = [str(c) for c in np.atleast_1d(meta["class_names"])]

    def items(mat: Path, folder: str) -> Items:
        rows = np.atleast_1d(_loadmat(mat, "StanfordCars")["annotations"])
        return [(f"{folder}/{a['fname']}", int(a["class"]) - 1) for a in rows]

    return Listing(
        classes,
        items(base / "devkit" / "cars_train_annos.mat", "cars_train"),
        items(base / "cars_test_annos_withlabels.mat", "cars_test"),
    )


def _read_aircraft(root: Path) -> Listing:
    data = root / "fgvc-aircraft-2013b" / "data"
    classes = _lines(data / "variants.txt", "FGVCAircraft")
    return _labelled(
        *[
            (
                (f"{i}.jpg", c)
                for i, c in (line.split(" ", 1) for line in _lines(data / f"images_variant_{s}.txt", "FGVCAircraft"))
            )
            for s in ("trainval", "test")
        ],
        classes=classes,
    )


def _read_sun(root: Path) -> Listing:
    base = root / "SUN397"
    classes = [line[3:] for line in _lines(base / "ClassName.txt", "SUN397")]
    images = sorted(p.relative_to(base) for p in base.rglob("sun_*.jpg"))
    return _labelled(((p.as_posix(), "/".join(p.parts[1:-1])) for p in images), None, classes=classes)


def _imagenet_names(root: Path) -> dict[str, str]:
    """CoOp's ``classnames.txt`` (``n01440764 tench``), when present under data.root."""
    path = root / "classnames.txt"
    if not path.is_file():
        return {}
    return dict(line.split(" ", 1) for line in _lines(path, "ImageNet"))


def _torchvision(cls: str, **kwargs) -> Callable[[Path], None]:
    def download(root: Path) -> None:
        import torchvision.datasets

        getattr(torchvision.datasets, cls)(str(root), download=True, **kwargs)

    return download


def export_image_folder(samples: Iterable[tuple], classes: list[str], out: Path) -> None:
    """(PIL image, label) pairs -> ``out/<class>/<index>.png``, renamed into place when complete."""
    import shutil

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for name in classes:
        (partial / name).mkdir(parents=True)
    for i, (image, label) in enumerate(samples):
        image.save(partial / classes[label] / f"{i:05d}.png")
    partial.rename(out)


def _cifar(cls: str) -> Callable[[Path], None]:
    """torchvision ships CIFAR as pickled batches. Its own loader unpickles them only after checking
    each file's MD5 against the checksums pinned in torchvision; we export the images once to PNG
    folders and read only those, so our code never unpickles anything."""

    def download(root: Path) -> None:
        import torchvision.datasets

        for split, train in (("train", True), ("test", False)):
            dataset = getattr(torchvision.datasets, cls)(str(root / "torchvision"), train=train, download=True)
            export_image_folder(dataset, list(dataset.classes), root / split)

    return download


def _text(*lines: str) -> str:
    return " ".join(lines)


_FOLDER_HELP = "root/<class>/<images> under data.root"

# the reference code's, for EuroSAT and RESISC45 (params.yaml's eurosat entry equals it: tests/test_benchmarks.py)
SATELLITE_TEMPLATES = (
    "a satellite photo of {}.",
    "a satellite photo of a {}.",
    "a satellite photo of the {}.",
    "a centered satellite photo of {}.",
    "This is an aerial image of a {}.",
    "a aerial image of {}.",
)

GENERIC_TEMPLATES = (  # the reference code's seven for generic-object datasets (ImageNet, Caltech-101, ...)
    "a bad photo of the {}.",
    "a {} in a video game.",
    "a origami {}.",
    "a photo of the small {}.",
    "art of the {}.",
    "a photo of the large {}.",
    "itap of a {}.",
)

EUROSAT_CLASS_NAMES = {  # torchvision's folder names -> the readable names the prompts use
    "AnnualCrop": "annual crop land",
    "Forest": "forest",
    "HerbaceousVegetation": "herbaceous vegetation land",
    "Highway": "highway or road",
    "Industrial": "industrial buildings",
    "Pasture": "pasture land",
    "PermanentCrop": "permanent crop land",
    "Residential": "residential buildings",
    "River": "river",
    "SeaLake": "sea or lake",
}

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark(
            "eurosat",
            "EuroSAT",
            "satellite",
            SATELLITE_TEMPLATES,
            images="eurosat/2750",
            coop_split="split_zhou_EuroSAT.json",
            download=_torchvision("EuroSAT"),
            get="downloaded by torchvision (python -m pipeline fetch-data)",
            names=lambda root: EUROSAT_CLASS_NAMES,
        ),
        Benchmark(
            "dtd",
            "Describable Textures (DTD)",
            "textures",
            tuple(
                f"a photo of {a} {{}} {kind}."
                for a in ("a", "the")
                for kind in ("texture", "pattern", "thing", "object")
            ),
            images="dtd/dtd/images",
            coop_split="split_zhou_DescribableTextures.json",
            read=_read_dtd,
            download=_torchvision("DTD"),
            get="downloaded by torchvision (python -m pipeline fetch-data); partition 1, pool = train + val",
        ),
        Benchmark(
            "flowers102",
            "Oxford Flowers 102",
            "flowers",
            ("a photo of a {}, a type of flower.",),
            images="flowers-102/jpg",
            coop_split="split_zhou_OxfordFlowers.json",
            read=_read_flowers,
            download=_torchvision("Flowers102"),
            get="downloaded by torchvision (python -m pipeline fetch-data); pool = train + val (needs scipy)",
        ),
        Benchmark(
            "food101",
            "Food-101",
            "food",
            ("a photo of {}, a kind of food.", "a plate of {}."),
            images="food-101/images",
            coop_split="split_zhou_Food101.json",
            read=_read_food,
            download=_torchvision("Food101"),
            get="downloaded by torchvision (python -m pipeline fetch-data, about 5 GB)",
        ),
        Benchmark(
            "oxford_pets",
            "Oxford-IIIT Pet",
            "pets",
            ("Describe what a pet {} looks like ", "Visually describe a {}, a type of pet."),
            images="oxford-iiit-pet/images",
            coop_split="split_zhou_OxfordPets.json",
            read=_read_pets,
            download=_torchvision("OxfordIIITPet"),
            clean=_lower,
            get="downloaded by torchvision (python -m pipeline fetch-data); pool = trainval",
        ),
        Benchmark(
            "stanford_cars",
            "Stanford Cars",
            "cars",
            (
                "How can you identify a(n) {}?",
                "Description of a {}, a type of car. ",
                "A caption of a photo of a {}:",
                "What are the primary characteristics of a {}?",
                "Description of the exterior of a {} ",
                "What are the identifying characteristics of a {}, a type of car?",
                "Describe an image from the internet of a {}",
                "What does a {} look like?",
                "Describe what a {}, a type of car, looks like",
            ),
            images="stanford_cars",
            coop_split="split_zhou_StanfordCars.json",
            read=_read_cars,
            get=_text(
                "torchvision cannot download it any more: put the files torchvision's StanfordCars expects",
                "under data.root/stanford_cars (devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_train/,",
                "cars_test_annos_withlabels.mat, cars_test/), e.g. from the Kaggle mirror (needs scipy)",
            ),
        ),
        Benchmark(
            "fgvc_aircraft",
            "FGVC Aircraft (variants)",
            "aircraft",
            ("a photo of a {}, a kind of aircraft.", "a photo of a {} airplane."),
            images="fgvc-aircraft-2013b/data/images",
            read=_read_aircraft,
            download=_torchvision("FGVCAircraft"),
            get="downloaded by torchvision (python -m pipeline fetch-data); pool = trainval",
        ),
        Benchmark(
            "sun397",
            "SUN397",
            "scenes",
            ("a photo of a {}.", "a photo of the {}."),
            images="SUN397",
            coop_split="split_zhou_SUN397.json",
            read=_read_sun,
            download=_torchvision("SUN397"),
            clean=_sun_name,
            get=_text(
                "downloaded by torchvision (python -m pipeline fetch-data, about 37 GB); no official split:",
                "give CoOp's split_zhou_SUN397.json as data.split_file, or a seeded split is used",
            ),
        ),
        Benchmark(
            "caltech101",
            "Caltech-101",
            "generic",
            GENERIC_TEMPLATES,
            images="caltech101/101_ObjectCategories",
            coop_split="split_zhou_Caltech101.json",
            download=_torchvision("Caltech101"),
            exclude=("BACKGROUND_Google", "Faces_easy"),
            names=lambda root: {
                "airplanes": "airplane",
                "Faces": "face",
                "Leopards": "leopard",
                "Motorbikes": "motorbike",
            },
            get=_text(
                "downloaded by torchvision (python -m pipeline fetch-data); 100 classes as in CoOp (no",
                "background, no Faces_easy); no official split: give CoOp's split JSON as data.split_file",
                "or a seeded split is used",
            ),
        ),
        *[
            Benchmark(
                f"cifar{n}",
                f"CIFAR-{n}",
                "generic",
                ("a photo of a {}.", "a low resolution photo of a {}.", "a blurry photo of a {}."),
                images="",
                split_dirs=("train", "test"),
                download=_cifar(f"CIFAR{n}"),
                get=_text(
                    "python -m pipeline fetch-data downloads it through torchvision (checksum-verified) and exports",
                    "PNG folders data.root/{train,test}/<class>/; or put your own export there",
                ),
            )
            for n in (10, 100)
        ],
        Benchmark(
            "resisc45",
            "NWPU-RESISC45",
            "satellite",
            SATELLITE_TEMPLATES,
            images="",
            get=_text(
                "not in torchvision: extract NWPU-RESISC45 so that data.root/<class>/<images> (45 folders);",
                "give CoOp's split JSON as data.split_file or a seeded split is used",
            ),
        ),
        Benchmark(
            "ucf101",
            "UCF101 (middle frames)",
            "actions",
            tuple(
                f"a {kind} of {a} person {verb}{{}}."
                for verb in ("", "using ", "doing ", "during ", "performing ", "practicing ")
                for a in ("a", "the")
                for kind in ("photo", "video", "example", "demonstration")
            ),
            images="",
            coop_split="split_zhou_UCF101.json",
            clean=_split_camel,
            get=_text(
                "not in torchvision as frames: one frame per video as data.root/<ClassName>/<frame>.jpg",
                "(CoOp's UCF-101-midframes); give CoOp's split_zhou_UCF101.json as data.split_file",
            ),
        ),
        Benchmark(
            "imagenet",
            "ImageNet-1k",
            "generic",
            GENERIC_TEMPLATES,
            images="",
            split_dirs=("train", "val"),
            names=_imagenet_names,
            get=_text(
                "not downloadable: data.root/train/<wnid>/ and data.root/val/<wnid>/ (val sorted into class",
                "folders), plus data.root/classnames.txt with lines '<wnid> <name>' for readable class names",
            ),
        ),
    ]
}


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise DatasetError(f"unknown dataset {name!r}; one of: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]
