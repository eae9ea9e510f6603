import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.core.artifacts import (
    ArtifactError,
    atomic_path,
    check_made_with,
    feature_table,
    read_features,
    read_tensors,
    write_json,
    write_table,
    write_tensors,
)

pytestmark = pytest.mark.unit


def test_features_round_trip_with_metadata(tmp_path):
    ids = ["a/1.png", "b/2.jpg", "c d/é.png"]
    feats = np.random.default_rng(0).normal(size=(3, 7)).astype(np.float32)
    meta = {"encoder": "clip", "model": "ViT-B-32", "pretrained": "openai"}
    write_table(tmp_path / "f.parquet", feature_table(ids, feats), meta)
    got_ids, got, got_meta = read_features(tmp_path / "f.parquet")
    assert got_ids == ids
    np.testing.assert_array_equal(got, feats)
    assert got_meta == meta
    schema = pq.read_schema(tmp_path / "f.parquet")
    assert str(schema.field("feature").type) == "fixed_size_list<element: float>[7]"


def test_same_content_gives_identical_bytes(tmp_path):
    feats = np.ones((2, 3), dtype=np.float32)
    for name in ("a", "b"):
        write_table(tmp_path / f"{name}.parquet", feature_table(["x", "y"], feats), {"k": 1})
        write_tensors(tmp_path / f"{name}.safetensors", {"w": torch.ones(2)}, {"k": 1})
        write_json(tmp_path / f"{name}.json", {"b": 1, "a": [1, 2]})
    for ext in ("parquet", "safetensors", "json"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()


def test_check_made_with_names_the_stage_to_rerun():
    with pytest.raises(ArtifactError, match=r"model='RN50'.*'ViT-B-32'.*dvc repro features_clip"):
        check_made_with("f.parquet", {"model": "RN50"}, {"model": "ViT-B-32"}, "features_clip")


def test_tensors_round_trip(tmp_path):
    write_tensors(tmp_path / "t.safetensors", {"b": torch.arange(3.0), "a": torch.eye(2)}, {"classes": ["x"]})
    tensors, meta = read_tensors(tmp_path / "t.safetensors")
    torch.testing.assert_close(tensors["a"], torch.eye(2))
    assert meta == {"classes": ["x"]}


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize("content", [b"", b"not parquet at all"])
def test_corrupt_files_get_a_clear_error(tmp_path, content):
    (tmp_path / "f.parquet").write_bytes(content)
    (tmp_path / "t.safetensors").write_bytes(content)
    with pytest.raises(ArtifactError, match="f.parquet"):
        read_features(tmp_path / "f.parquet")
    with pytest.raises(ArtifactError, match="t.safetensors"):
        read_tensors(tmp_path / "t.safetensors")
