"""A NaN inside an otherwise valid features file is refused by whoever reads it (read_features:
pseudo_labels, align, evaluate), naming the file and the row count, instead of that image being
silently never selected."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from pipeline.core.artifacts import ArtifactError, feature_table, read_features, write_table
from pipeline.core.params import ClipParams
from pipeline.models.factory import clip_identity

from helpers import PROJECT, smoke_params


def clip_pool(path, bad_rows: list[int], value: float = np.nan):
    features = np.random.default_rng(0).normal(size=(10, 32)).astype(np.float32)
    features[bad_rows, 3] = value
    meta = {**clip_identity(ClipParams(**smoke_params()["clip"])), "preprocess": {}}
    write_table(path, feature_table([f"c/{i}.png" for i in range(10)], features), meta)
    return path


@pytest.mark.unit
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_read_features_refuses_non_finite_rows(tmp_path, value):
    path = clip_pool(tmp_path / "pool.parquet", [2, 7], value)
    with pytest.raises(ArtifactError, match=r"pool\.parquet: 2 of 10 rows hold NaN or infinite values.*features_clip"):
        read_features(path, by="features_clip")


@pytest.mark.unit
def test_finite_features_are_read(tmp_path):
    ids, features, _ = read_features(clip_pool(tmp_path / "pool.parquet", []))
    assert len(ids) == 10 and features.shape == (10, 32)


@pytest.mark.e2e
def test_the_pseudo_labels_stage_refuses_a_nan_row(tmp_path):
    path = clip_pool(tmp_path / "pool.parquet", [4])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(smoke_params()))
    result = subprocess.run(
        [sys.executable, "-m", "stages.pseudo_labels", str(path), str(tmp_path / "classifiers.safetensors")]
        + [str(tmp_path / "out.parquet"), "--params", str(tmp_path / "params.yaml")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"error: {path}: 1 of 10 rows hold NaN or infinite values" in result.stderr
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.unit
def test_incremental_encoding_does_not_copy_a_nan_row_on(tmp_path):
    """An earlier output with a NaN row: that image is encoded again, not reused."""
    import pyarrow as pa

    from pipeline.encode.feature_cache import PreviousFeatures

    features = np.ones((3, 4), dtype=np.float32)
    features[1, 2] = np.nan
    table = feature_table(["a", "b", "c"], features).append_column("sha256", pa.array(["ha", "hb", "hc"]))
    meta = {"encoder": "clip", "model": "m"}
    write_table(tmp_path / "pool.parquet", table, meta)
    found = PreviousFeatures([tmp_path / "pool.parquet"], meta).lookup(pa.array(["hc", "hb", "ha"]))
    assert sorted(found) == [0, 2]
