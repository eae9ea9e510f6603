"""Each benchmark adapter against a tiny on-disk tree in the layout torchvision downloads, download off.

Where torchvision's own class accepts the tiny tree, the test also checks that it sees the same
images and labels as our reader (so the tree really is torchvision's layout). Flowers102 is the
exception: torchvision checks the MD5 of its two .mat files, which a tiny tree cannot match.
"""

from __future__ import annotations

import json
import typing
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets as tvd
import yaml
from PIL import Image
from scipy.io import savemat

from pipeline.core.params import DataParams, load_params
from pipeline.data import datasets
from pipeline.data.benchmarks import BENCHMARKS, export_image_folder
from pipeline.data.datasets import DatasetError, create_dataset

from helpers import PROJECT

pytestmark = pytest.mark.unit


def _img(path: Path, shade: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (shade, 0, 0)).save(path)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _load(name: str, root: Path, **extra):
    params = DataParams(source=name, root=str(root), download=False, **extra)
    return params, create_dataset(params)


def _labels_of(collection, split: str) -> Counter:
    if split == "test":
        return Counter(collection.classes[i] for i in collection.test_labels)
    return Counter(collection.classes[collection.pool_labels[p]] for p in collection.pool)


def _torchvision_counts(dataset, classes: list[str]) -> Counter:
    """Class-name counts as torchvision's class sees them (it decodes each tiny image)."""
    return Counter(classes[dataset[i][1]] for i in range(len(dataset)))


def _agrees_with_torchvision(dataset_class, root: Path, collection, splits: dict[str, str]) -> None:
    """Per split, the class counts torchvision's own class reads equal ours (``splits``: its split -> ours)."""
    for split, ours in splits.items():
        tv = dataset_class(str(root), split=split)
        assert _torchvision_counts(tv, collection.classes) == _labels_of(collection, ours), split


def _all_files_exist(params, collection) -> None:
    root = datasets.image_root(params)
    for i in collection.pool + collection.test:
        assert (root / i).is_file(), i


def test_dtd(tmp_path):
    base = tmp_path / "dtd" / "dtd"
    for c in ("banded", "blotchy"):
        for i in range(4):
            _img(base / "images" / c / f"{c}_{i}.jpg", i)
    _write(base / "labels/train1.txt", "banded/banded_0.jpg\nblotchy/blotchy_0.jpg\n")
    _write(base / "labels/val1.txt", "banded/banded_1.jpg\nblotchy/blotchy_1.jpg\n")
    _write(base / "labels/test1.txt", "banded/banded_2.jpg\nblotchy/blotchy_2.jpg\nblotchy/blotchy_3.jpg\n")
    params, c = _load("dtd", tmp_path)
    assert c.classes == ["banded", "blotchy"]
    assert c.pool == ["banded/banded_0.jpg", "blotchy/blotchy_0.jpg", "banded/banded_1.jpg", "blotchy/blotchy_1.jpg"]
    assert c.test_labels == [0, 1, 1]
    _all_files_exist(params, c)
    tv_test = tvd.DTD(str(tmp_path), split="test")
    assert _torchvision_counts(tv_test, c.classes) == _labels_of(c, "test")
    tv_pool = _torchvision_counts(tvd.DTD(str(tmp_path), split="train"), c.classes)
    tv_pool += _torchvision_counts(tvd.DTD(str(tmp_path), split="val"), c.classes)
    assert tv_pool == _labels_of(c, "pool")


def test_dtd_with_a_coop_split_file(tmp_path):
    base = tmp_path / "dtd" / "dtd" / "images"
    for c in ("banded", "bubbly"):
        _img(base / c / "a.jpg")
        _img(base / c / "b.jpg")
    split = {
        "train": [["banded/a.jpg", 0, "banded"], ["bubbly/a.jpg", 1, "bubbly"]],
        "val": [],
        "test": [["banded/b.jpg", 0, "banded"], ["bubbly/b.jpg", 1, "bubbly"]],
    }
    _write(tmp_path / "split_zhou_DescribableTextures.json", json.dumps(split))
    params, c = _load("dtd", tmp_path, split_file=str(tmp_path / "split_zhou_DescribableTextures.json"))
    assert c.pool == ["banded/a.jpg", "bubbly/a.jpg"] and c.test_labels == [0, 1]
    _all_files_exist(params, c)


def test_flowers102_reads_the_mat_files_directly(tmp_path):
    base = tmp_path / "flowers-102"
    for i in range(1, 7):
        _img(base / "jpg" / f"image_{i:05d}.jpg", i)
    savemat(base / "imagelabels.mat", {"labels": np.array([[1, 1, 2, 2, 102, 102]], dtype=np.uint8)})
    savemat(
        base / "setid.mat",
        {
            "trnid": np.array([[1, 3]], dtype=np.uint16),
            "valid": np.array([[5]]),
            "tstid": np.array([[2, 4, 6]], dtype=np.uint16),
        },
    )
    params, c = _load("flowers102", tmp_path)
    assert len(c.classes) == 102 and c.classes[0] == "pink primrose"
    assert c.pool == ["image_00001.jpg", "image_00003.jpg", "image_00005.jpg"]
    assert [c.pool_labels[p] for p in c.pool] == [0, 1, 101]
    assert c.test == ["image_00002.jpg", "image_00004.jpg", "image_00006.jpg"] and c.test_labels == [0, 1, 101]
    _all_files_exist(params, c)


def test_food101(tmp_path):
    base = tmp_path / "food-101"
    train = {"apple_pie": ["apple_pie/1", "apple_pie/2"], "waffles": ["waffles/3"]}
    test = {"apple_pie": ["apple_pie/4"], "waffles": ["waffles/5", "waffles/6"]}
    _write(base / "meta/train.json", json.dumps(train))
    _write(base / "meta/test.json", json.dumps(test))
    for paths in [*train.values(), *test.values()]:
        for p in paths:
            _img(base / "images" / f"{p}.jpg")
    params, c = _load("food101", tmp_path)
    assert c.classes == ["apple pie", "waffles"]
    assert c.test == ["apple_pie/4.jpg", "waffles/5.jpg", "waffles/6.jpg"] and c.test_labels == [0, 1, 1]
    _all_files_exist(params, c)
    _agrees_with_torchvision(tvd.Food101, tmp_path, c, {"train": "pool", "test": "test"})


def test_oxford_pets_lowercases_breeds(tmp_path):
    base = tmp_path / "oxford-iiit-pet"
    _write(base / "annotations/trainval.txt", "Abyssinian_1 1 1 1\namerican_bulldog_10 2 2 1\nAbyssinian_2 1 1 1\n")
    _write(base / "annotations/test.txt", "american_bulldog_11 2 2 1\n")
    for name in ("Abyssinian_1", "Abyssinian_2", "american_bulldog_10", "american_bulldog_11"):
        _img(base / "images" / f"{name}.jpg")
    params, c = _load("oxford_pets", tmp_path)
    assert c.classes == ["abyssinian", "american bulldog"]
    assert c.pool_labels == {"Abyssinian_1.jpg": 0, "american_bulldog_10.jpg": 1, "Abyssinian_2.jpg": 0}
    assert c.test == ["american_bulldog_11.jpg"] and c.test_labels == [1]
    _all_files_exist(params, c)
    _agrees_with_torchvision(tvd.OxfordIIITPet, tmp_path, c, {"trainval": "pool", "test": "test"})


def _cars_annotations(path: Path, rows: list[tuple[str, int]]) -> None:
    savemat(path, {"annotations": np.array(rows, dtype=[("fname", "O"), ("class", "O")])})


def test_stanford_cars_reads_the_devkit_mat_files(tmp_path):
    base = tmp_path / "stanford_cars"
    (base / "devkit").mkdir(parents=True)
    savemat(
        base / "devkit/cars_meta.mat",
        {"class_names": np.array(["AM General Hummer SUV 2000", "Acura RL Sedan 2012"], dtype=object)},
    )
    _cars_annotations(base / "devkit/cars_train_annos.mat", [("00001.jpg", 1), ("00002.jpg", 2), ("00003.jpg", 2)])
    _cars_annotations(base / "cars_test_annos_withlabels.mat", [("00001.jpg", 2), ("00002.jpg", 1)])
    for f in ("00001.jpg", "00002.jpg", "00003.jpg"):
        _img(base / "cars_train" / f)
    for f in ("00001.jpg", "00002.jpg"):
        _img(base / "cars_test" / f)
    params, c = _load("stanford_cars", tmp_path)
    assert c.classes == ["AM General Hummer SUV 2000", "Acura RL Sedan 2012"]
    assert c.pool == ["cars_train/00001.jpg", "cars_train/00002.jpg", "cars_train/00003.jpg"]
    assert c.test == ["cars_test/00001.jpg", "cars_test/00002.jpg"] and c.test_labels == [1, 0]
    _all_files_exist(params, c)
    _agrees_with_torchvision(tvd.StanfordCars, tmp_path, c, {"train": "pool", "test": "test"})


def test_fgvc_aircraft_variants(tmp_path):
    data = tmp_path / "fgvc-aircraft-2013b" / "data"
    _write(data / "variants.txt", "707-320\nA300B4\nDC-3\n")
    _write(data / "images_variant_trainval.txt", "0000001 707-320\n0000002 A300B4\n")
    _write(data / "images_variant_test.txt", "0000003 DC-3\n0000004 707-320\n")
    for i in range(1, 5):
        _img(data / "images" / f"000000{i}.jpg")
    params, c = _load("fgvc_aircraft", tmp_path)
    assert c.classes == ["707 320", "A300B4", "DC 3"]
    assert c.test == ["0000003.jpg", "0000004.jpg"] and c.test_labels == [2, 0]
    _all_files_exist(params, c)
    _agrees_with_torchvision(tvd.FGVCAircraft, tmp_path, c, {"trainval": "pool", "test": "test"})


def test_sun397_nested_class_names_and_seeded_split(tmp_path):
    base = tmp_path / "SUN397"
    _write(base / "ClassName.txt", "/a/abbey\n/a/apartment_building/outdoor\n")
    for i in range(4):
        _img(base / "a/abbey" / f"sun_a{i}.jpg")
        _img(base / "a/apartment_building/outdoor" / f"sun_b{i}.jpg")
    params, c = _load("sun397", tmp_path, test_fraction=0.25)
    assert c.classes == ["abbey", "outdoor apartment building"]
    assert len(c.test) == 2 and sorted(c.test_labels) == [0, 1] and len(c.pool) == 6
    _all_files_exist(params, c)
    tv = tvd.SUN397(str(tmp_path))
    assert sum(_torchvision_counts(tv, c.classes).values()) == len(c.pool) + len(c.test)


def test_caltech101_drops_background_and_faces_easy(tmp_path):
    base = tmp_path / "caltech101" / "101_ObjectCategories"
    for c in ("BACKGROUND_Google", "Faces", "Faces_easy", "accordion", "airplanes"):
        for i in range(1, 5):
            _img(base / c / f"image_{i:04d}.jpg")
    params, c = _load("caltech101", tmp_path)
    assert c.classes == ["face", "accordion", "airplane"]
    assert len(c.pool) + len(c.test) == 12 and not any("Faces_easy" in p or "BACKGROUND" in p for p in c.pool)
    _all_files_exist(params, c)
    tv = tvd.Caltech101(str(tmp_path))
    assert len(tv) == 16  # torchvision keeps Faces_easy; CoOp's 100-class version does not


def test_cifar_export_and_its_image_folders(tmp_path):
    classes = ["airplane", "aquarium_fish"]
    samples = [(Image.new("RGB", (32, 32), (i * 40, 0, 0)), i % 2) for i in range(6)]
    export_image_folder(samples[:4], classes, tmp_path / "train")
    export_image_folder(samples[4:], classes, tmp_path / "test")
    assert not list(tmp_path.glob("*.partial"))
    params, c = _load("cifar100", tmp_path)
    assert c.classes == ["airplane", "aquarium fish"]
    assert c.pool == [
        "train/airplane/00000.png",
        "train/airplane/00002.png",
        "train/aquarium_fish/00001.png",
        "train/aquarium_fish/00003.png",
    ]
    assert c.test == ["test/airplane/00000.png", "test/aquarium_fish/00001.png"] and c.test_labels == [0, 1]
    assert datasets.fetch(params) == tmp_path, "an existing export is used as it is"
    _all_files_exist(params, c)


def test_imagenet_folders_with_classnames_file(tmp_path):
    for split in ("train", "val"):
        for wnid in ("n01440764", "n01443537"):
            _img(tmp_path / split / wnid / f"{split}_{wnid}.JPEG")
    _write(tmp_path / "classnames.txt", "n01440764 tench\nn01443537 goldfish\n")
    params, c = _load("imagenet", tmp_path)
    assert c.classes == ["tench", "goldfish"]
    assert c.test == ["val/n01440764/val_n01440764.JPEG", "val/n01443537/val_n01443537.JPEG"]
    _all_files_exist(params, c)
    (tmp_path / "val" / "n01443537").rename(tmp_path / "val" / "n99999999")
    with pytest.raises(DatasetError, match="different class folders"):
        create_dataset(params)


@pytest.mark.parametrize(
    ("name", "folders", "expected"),
    [
        ("resisc45", ["baseball_diamond", "sea_ice"], ["baseball diamond", "sea ice"]),
        ("ucf101", ["ApplyEyeMakeup", "Apply_Lipstick"], ["apply eye makeup", "apply lipstick"]),
    ],
)
def test_folder_benchmarks_clean_names(tmp_path, name, folders, expected):
    for f in folders:
        for i in range(3):
            _img(tmp_path / f / f"{i}.jpg")
    params, c = _load(name, tmp_path)
    assert c.classes == expected and len(c.pool) + len(c.test) == 6
    _all_files_exist(params, c)


@pytest.mark.parametrize("name", ["dtd", "stanford_cars", "imagenet", "cifar10"])
def test_missing_benchmark_says_how_to_get_it(tmp_path, name):
    with pytest.raises(DatasetError, match=BENCHMARKS[name].title.split(" ")[0]):
        datasets.fetch(DataParams(source=name, root=str(tmp_path), download=False))


def test_missing_metadata_names_the_file(tmp_path):
    (tmp_path / "oxford-iiit-pet" / "annotations").mkdir(parents=True)
    with pytest.raises(DatasetError, match="trainval.txt"):
        _load("oxford_pets", tmp_path)


def test_registry_matches_params_and_its_entries_validate():
    from pipeline.core.params import DatasetParams

    sources = typing.get_args(DataParams.model_fields["source"].annotation)
    assert set(BENCHMARKS) <= set(sources)
    for spec in BENCHMARKS.values():
        assert all(t.count("{}") == 1 for t in spec.templates), spec.name
        entry = yaml.safe_load(spec.params_yaml())[spec.name]
        params = DatasetParams(**entry)
        assert params.data.source == spec.name and params.data.root == f"data/{spec.name}"
        assert params.domain == spec.domain and params.templates == list(spec.templates)
        assert (PROJECT / "prompts" / f"{spec.domain}.yaml").is_file(), f"{spec.name}: no prompts for {spec.domain}"


def test_params_yaml_entries_are_the_catalogs():
    """One source for a dataset's templates and domain: the catalog, which `nola datasets NAME` prints."""
    entries = {
        name: d for name, d in load_params(PROJECT / "params.yaml").datasets.items() if d.data.source in BENCHMARKS
    }
    assert entries, "params.yaml has no entry of the paper's datasets to compare"
    for name, entry in entries.items():
        catalog = BENCHMARKS[entry.data.source].params_entry(entry.data.root)
        mine = {"data": {"source": entry.data.source, "root": entry.data.root}, "domain": entry.domain}
        assert {**mine, "templates": entry.templates} == catalog, (
            f"params.yaml's datasets.{name} differs from `nola datasets {entry.data.source}` "
            "(pipeline/data/benchmarks.py): make them one"
        )


def test_paper_benchmark_params_give_the_papers_protocol():
    """CoOp's split files (by CoOp's names), the reference's templates, and a CLIP built as OpenAI's
    weights need; every entry validates as params."""
    import sys

    from pipeline.core.params import ClipParams, DatasetParams
    from pipeline.models.factory import quick_gelu

    from helpers import sh

    out = sh(sys.executable, "scripts/paper_benchmark.py", "params", cwd=PROJECT).stdout
    entries = yaml.safe_load(out)["datasets"]
    assert len(entries) == 11
    splits = {name: DatasetParams(**e).data.split_file for name, e in entries.items()}
    assert splits["eurosat"] == "data/eurosat/split_zhou_EuroSAT.json"
    assert splits["oxford_pets"] == "data/oxford_pets/split_zhou_OxfordPets.json"
    assert splits["fgvc_aircraft"] is None and splits["imagenet"] is None  # CoOp uses their own splits
    assert sum(s is not None for s in splits.values()) == 9
    assert entries["eurosat"]["templates"][-1] == "a aerial image of {}."
    assert len(entries["ucf101"]["templates"]) == 48
    assert "model: ViT-B-32" in out and "quick_gelu: auto" in out
    clip = ClipParams()
    assert (clip.model, clip.pretrained, clip.quick_gelu) == ("ViT-B-32", "openai", "auto") and quick_gelu(clip)


def test_a_missing_split_file_says_where_to_get_it(tmp_path):
    (tmp_path / "eurosat" / "2750" / "Forest").mkdir(parents=True)
    params = DataParams(source="eurosat", root=str(tmp_path), split_file=str(tmp_path / "split_zhou_EuroSAT.json"))
    with pytest.raises(DatasetError, match=r"EuroSAT.json'?: no such file; CoOp's split JSONs .* DATASETS.md"):
        create_dataset(params)
