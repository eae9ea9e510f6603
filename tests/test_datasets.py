import json

import numpy as np
import pytest
from PIL import Image

from pipeline.core.params import DataParams
from pipeline.data import datasets, synthetic
from pipeline.data.datasets import DatasetError, create_dataset, read_eval_labels
from pipeline.data.images import load_rgb

pytestmark = pytest.mark.unit


def _tree(root, names, per_class=5, suffix=".jpg"):
    for n in names:
        (root / n).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), (i * 10, 0, 0)).save(root / n / f"{i}{suffix}")
    return root


def test_synthetic_is_deterministic(tmp_path):
    a = synthetic.generate(tmp_path / "a", classes=2, per_class=3, size=16, seed=3)
    b = synthetic.generate(tmp_path / "b", classes=2, per_class=3, size=16, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 6
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_folder_source_splits_every_class_and_is_seeded(tmp_path):
    root = _tree(tmp_path / "imgs", ["dog_breed", "cat"], per_class=10)
    params = DataParams(source="folder", root=str(root), test_fraction=0.3, seed=1)
    c = create_dataset(params)
    assert c.classes == ["cat", "dog breed"]
    assert len(c.test) == 6 and len(c.pool) == 14
    assert sorted(c.test_labels) == [0, 0, 0, 1, 1, 1]
    assert set(c.pool).isdisjoint(c.test)
    again = create_dataset(params)
    assert (again.pool, again.test) == (c.pool, c.test)
    other = create_dataset(params.model_copy(update={"seed": 2}))
    assert other.test != c.test


def test_class_names_from_params_must_match_folders(tmp_path):
    root = _tree(tmp_path / "imgs", ["a", "b"])
    c = create_dataset(DataParams(source="folder", root=str(root), classes=["apple", "banana"]))
    assert c.classes == ["apple", "banana"]
    with pytest.raises(DatasetError, match="data.classes has 1 names"):
        create_dataset(DataParams(source="folder", root=str(root), classes=["apple"]))


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="data.root"):
        create_dataset(DataParams(source="folder", root=str(tmp_path / "nope")))


def test_manifest_with_split_and_unlabeled_pool(tmp_path):
    root = _tree(tmp_path / "imgs", ["x", "y"], per_class=3)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,split\nx/0.jpg,x,test\ny/0.jpg,y,test\nx/1.jpg,,train\ny/1.jpg,,train\nx/2.jpg,x,train\n"
    )
    c = create_dataset(DataParams(source="manifest", root=str(root), manifest=str(manifest)))
    assert c.classes == ["x", "y"]
    assert c.test == ["x/0.jpg", "y/0.jpg"] and c.test_labels == [0, 1]
    assert c.pool == ["x/1.jpg", "x/2.jpg", "y/1.jpg"]
    assert c.pool_labels == {"x/2.jpg": 0}


def test_coop_split_json(tmp_path):
    root = _tree(tmp_path / "imgs", ["Forest", "River"], per_class=2)
    split = {
        "train": [["Forest/0.jpg", 0, "Forest"], ["River/0.jpg", 1, "River"]],
        "val": [],
        "test": [["Forest/1.jpg", 0, "Forest"], ["River/1.jpg", 1, "River"]],
    }
    (tmp_path / "split.json").write_text(json.dumps(split))
    c = create_dataset(DataParams(source="folder", root=str(root), split_file=str(tmp_path / "split.json")))
    assert c.classes == ["Forest", "River"]
    assert c.pool == ["Forest/0.jpg", "River/0.jpg"] and c.test_labels == [0, 1]


def test_eurosat_in_torchvision_layout_without_download(tmp_path):
    root = tmp_path / "eurosat_root"
    _tree(root / "eurosat" / "2750", ["AnnualCrop", "SeaLake", "Highway"], per_class=5)
    params = DataParams(source="eurosat", root=str(root), download=False)
    assert datasets.fetch(params) == root
    c = create_dataset(params)
    assert c.classes == ["annual crop land", "highway or road", "sea or lake"]
    assert len(c.pool) + len(c.test) == 15
    assert datasets.image_root(params) == root / "eurosat" / "2750"


def test_eurosat_missing_without_download_says_so(tmp_path):
    with pytest.raises(DatasetError, match="data.download is false"):
        datasets.fetch(DataParams(source="eurosat", root=str(tmp_path), download=False))


def test_write_split_keeps_labels_out_of_the_pool_file(tmp_path):
    root = _tree(tmp_path / "imgs", ["a", "b"], per_class=4)
    c = create_dataset(DataParams(source="folder", root=str(root), test_fraction=0.25))
    datasets.write_split(c, tmp_path / "split")
    import pyarrow.parquet as pq

    assert pq.read_schema(tmp_path / "split" / "pool.parquet").names == ["id", "sha256"]
    labels = pq.read_table(tmp_path / "split" / "labels.parquet").to_pydict()
    assert labels["split"].count("test") == 2 and labels["split"].count("pool") == 6


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "I;16"])
def test_load_rgb_converts_modes(tmp_path, mode):
    arr = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    im = Image.fromarray(arr).convert(mode) if mode != "I;16" else Image.fromarray(arr.astype(np.uint16) * 257)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    im.save(path)
    out = load_rgb(path)
    assert out.mode == "RGB" and out.size == (8, 8)
    if mode == "I;16":
        assert np.asarray(out)[..., 0].max() > 200, "16-bit values are scaled, not clipped"


def test_load_rgb_applies_exif_orientation(tmp_path):
    im = Image.new("RGB", (20, 10), (255, 0, 0))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 clockwise on display
    im.save(tmp_path / "r.jpg", exif=exif)
    assert load_rgb(tmp_path / "r.jpg").size == (10, 20)


def _touch_images(root, paths):
    for rel in paths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")


def test_a_flat_folder_is_an_unlabeled_pool_with_the_classes_of_a_text_file(tmp_path):
    _touch_images(tmp_path / "img", ["b.jpg", "2024/june/a.png", "2024/c.JPG", ".hidden/d.jpg"])
    names = tmp_path / "classes.txt"
    names.write_text("cat\n\n  dog \nbird\n")
    c = create_dataset(DataParams(source="folder", root=str(tmp_path / "img"), classes_file=str(names)))
    assert c.classes == ["cat", "dog", "bird"]
    assert c.pool == ["2024/c.JPG", "2024/june/a.png", "b.jpg"]
    assert c.test == [] and c.pool_labels == {} and not c.labeled


def test_sub_folders_with_a_classes_file_are_an_unlabeled_layout_not_classes(tmp_path):
    """Photos sorted by date (root/2024/06/x.jpg) are not class folders once the names come from a file."""
    _touch_images(tmp_path / "img", ["2023/x.jpg", "2024/06/y.jpg", "2024/07/z.png"])
    names = tmp_path / "classes.txt"
    names.write_text("cat\ndog\n")
    c = create_dataset(DataParams(source="folder", root=str(tmp_path / "img"), classes_file=str(names)))
    assert c.classes == ["cat", "dog"] and c.classes_from == "data.classes_file"
    assert c.pool == ["2023/x.jpg", "2024/06/y.jpg", "2024/07/z.png"] and c.test == [] and not c.labeled


def test_a_path_only_manifest_is_unlabeled(tmp_path):
    (tmp_path / "m.csv").write_text("path\nx/1.jpg\n2.jpg\n")
    c = create_dataset(
        DataParams(source="manifest", root=str(tmp_path), manifest=str(tmp_path / "m.csv"), classes=["a", "b"])
    )
    assert c.pool == ["2.jpg", "x/1.jpg"] and c.test == [] and not c.labeled


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (None, r"no labels, so the class names must be given: set data.classes"),
        (["cat"], r"data.classes: 1 class name\(s\) \['cat'\]; .*at least two classes"),
        (["cat", "dog", "cat"], r"data.classes: class names \['cat'\] occur more than once"),
        (["Cat", "dog", "cat"], r"data.classes: class names \['Cat', 'cat'\] differ only in case"),
    ],
)
def test_class_lists_that_cannot_work_are_refused(tmp_path, classes, message):
    _touch_images(tmp_path, ["a.jpg"])
    with pytest.raises(DatasetError, match=message):
        create_dataset(DataParams(source="folder", root=str(tmp_path), classes=classes))


def test_a_one_class_folder_is_refused(tmp_path):
    _touch_images(tmp_path, ["dog/a.jpg", "dog/b.jpg"])
    with pytest.raises(DatasetError, match=r"the class folders of .*: 1 class name\(s\) \['dog'\]"):
        create_dataset(DataParams(source="folder", root=str(tmp_path)))


def test_eval_labels_name_pool_images_and_known_classes(tmp_path):
    labels = tmp_path / "labels.csv"
    params = DataParams(source="folder", root=str(tmp_path), eval_labels=str(labels))
    labels.write_text("path,label\na.jpg,dog\n")
    assert read_eval_labels(params, ["cat", "dog"], ["a.jpg", "b.jpg"]) == {"a.jpg": 1}
    labels.write_text("path,label\na.jpg,cow\n")
    with pytest.raises(DatasetError, match=r"data.eval_labels = .*labels \['cow'\] are not among"):
        read_eval_labels(params, ["cat", "dog"], ["a.jpg"])
    labels.write_text("path,label\nz.jpg,dog\n")
    with pytest.raises(DatasetError, match=r"1 paths are not images of the collection"):
        read_eval_labels(params, ["cat", "dog"], ["a.jpg"])
