"""Reading and writing the pipeline's artifacts: parquet, safetensors and JSON, always atomically.

Every writer goes through :func:`atomic_path`: the bytes land in a temporary file beside the
target and are renamed over it only when complete, so a crash leaves the old artifact or none,
never a truncated one that looks valid. Nothing time- or host-dependent is written, so the same
inputs give byte-identical files (DVC's caching depends on it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file, save_file

from pipeline.core.errors import NolaError, disk_full

META_KEY = b"nola"


class ArtifactError(NolaError, ValueError):
    """An artifact that is missing, malformed or made with other settings than the current ones."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``path``, on failure remove it (a full disk
    becomes one :class:`DiskFullError` naming ``path``).

    A process killed (kill -9) while writing leaves its temporary file behind, never a partial
    ``path``; the next write of the same artifact removes such leftovers.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.iterdir():
        if stale.name.startswith(f".{path.name}.") and stale.name.endswith(".tmp"):
            stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except Exception as err:  # pyarrow and safetensors report a full disk with their own types
        if (full := disk_full(err, path)) is not None:
            raise full from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def output_set(out_dir: str | Path, last: str) -> Iterator[Path]:
    """Write a stage's several outputs all-or-nothing: the block writes into a staging folder
    beside ``out_dir``; only when it ends without error are the files moved in, ``last`` (the
    metrics, which DVC shows) last and the old one removed first, so a failure or a kill never
    leaves a new file beside an old one, nor metrics without the files they describe."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.*.tmp"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        yield staging
        out_dir.mkdir(exist_ok=True)
        (out_dir / last).unlink(missing_ok=True)
        for name in sorted(os.listdir(staging), key=lambda n: n == last):
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: not found; run the stage that produces it (dvc repro)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: not valid JSON ({err})") from None


def read_classes(path: str | Path) -> list[str]:
    """The split stage's classes.json, ``{"classes": [name, ...]}``; valid JSON of another shape
    (a list of objects, a name that is not a string) is refused here with the expected shape."""
    doc = read_json(path)
    classes = doc.get("classes") if isinstance(doc, dict) else None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c.strip() for c in classes):
        raise ArtifactError(
            f'{path}: expected {{"classes": ["name", ...]}} (a non-empty list of class names) but found '
            f"{_show(doc)}; rerun the 'split' stage (dvc repro split), or fix the file if you wrote it"
        )
    return classes


def write_table(path: str | Path, table: pa.Table, meta: Mapping[str, Any] | None = None) -> None:
    """Write a parquet file; ``meta`` is stored as sorted JSON in the schema metadata."""
    if meta is not None:
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta, sort_keys=True).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


@contextlib.contextmanager
def table_writer(path: str | Path, schema: pa.Schema, meta: Mapping[str, Any]) -> Iterator[pq.ParquetWriter]:
    """Stream tables into one parquet file (a row group each), so memory stays one table whatever
    the file's size; like every writer here, the file appears atomically when the block ends."""
    schema = schema.with_metadata({META_KEY: json.dumps(meta, sort_keys=True).encode()})
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        yield writer


def read_table(
    path: str | Path, columns: list[str] | None = None, made_with: Mapping[str, Any] | None = None, by: str = ""
) -> tuple[pa.Table, dict[str, Any]]:
    """A parquet artifact and its metadata; ``made_with``: see :func:`check_made_with`."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: not found; run the stage that produces it (dvc repro)")
    try:
        table = pq.read_table(path, columns=columns)
    except (pa.ArrowInvalid, OSError) as err:
        raise ArtifactError(f"{path}: not a readable parquet file ({err})") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    meta = json.loads(raw) if raw else {}
    check_made_with(path, meta, made_with or {}, by)
    return table, meta


def feature_table(ids: list[str], features: np.ndarray) -> pa.Table:
    """One row per image: its id and its feature vector as a fixed-size float32 list."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    flat = pa.array(features.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, features.shape[1])
    return pa.table({"id": pa.array(ids, type=pa.string()), "feature": column})


def read_features(
    path: str | Path, made_with: Mapping[str, Any] | None = None, by: str = "", ids: list[str] | None = None
) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """Image ids, an N x D float32 matrix and the metadata of a features file; ``ids``: the images
    it must hold, in this order. A non-finite value is refused here, whoever reads it: it would
    silently lose its image in every later stage."""
    table, meta = read_table(path, made_with=made_with, by=by)
    if "feature" not in table.column_names or "id" not in table.column_names:
        raise ArtifactError(f"{path}: not a features file (needs columns id, feature)")
    if ids is not None:
        check_made_with(path, {"ids": table.column("id").to_pylist()}, {"ids": ids}, by)
    features = feature_matrix(table.column("feature"))
    bad = int((~np.isfinite(features).all(axis=1)).sum()) if features.size else 0
    if bad:
        raise ArtifactError(
            f"{path}: {bad} of {len(features)} rows hold NaN or infinite values; the file is damaged or was "
            f"written by other code: delete it and rerun the stage that makes it ({by or 'dvc repro'})"
        )
    return table.column("id").to_pylist(), features, meta


def feature_matrix(column: pa.ChunkedArray | pa.FixedSizeListArray) -> np.ndarray:
    """A fixed-size-list feature column as an N x D float32 array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dim = column.type.list_size
    return np.array(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)


def _show(value: Any, limit: int = 100) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_difference(got: Any, want: Any) -> str:
    if isinstance(got, list) and isinstance(want, list):
        i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        a, b = (got[i] if i < len(got) else "<end>"), (want[i] if i < len(want) else "<end>")
        return f" ({len(got)} vs {len(want)} items; first difference at item {i}: {a!r} vs {b!r})"
    if isinstance(got, dict) and isinstance(want, dict):
        keys = sorted(k for k in {*got, *want} if got.get(k) != want.get(k))
        return " (differs in " + ", ".join(f"{k}: {got.get(k)!r} vs {want.get(k)!r}" for k in keys) + ")"
    return ""


def check_made_with(path: str | Path, meta: Mapping[str, Any], expected: Mapping[str, Any], stage: str) -> None:
    """Refuse an artifact whose metadata differs from ``expected`` (made with another encoder,
    preprocessing, class list or split than the current settings give), naming the stage whose
    rerun makes it again."""
    for key, want in expected.items():
        got = meta.get(key)
        if got != want:
            raise ArtifactError(
                f"{path}: made with {key}={_show(got)} but the current settings give {_show(want)}"
                f"{_first_difference(got, want)}; rerun the '{stage}' stage (dvc repro {stage})"
            )


def write_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """safetensors with our metadata as one sorted JSON string (its format takes str -> str)."""
    contiguous = {k: v.detach().cpu().contiguous() for k, v in sorted(tensors.items())}
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata={"nola": json.dumps(meta, sort_keys=True)})


def read_tensors(
    path: str | Path, made_with: Mapping[str, Any] | None = None, by: str = ""
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and metadata of a safetensors artifact; ``made_with``: see :func:`check_made_with`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: not found; run the stage that produces it (dvc repro)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("nola", "{}"))
        tensors = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ArtifactError(f"{path}: not a readable safetensors file ({err})") from None
    check_made_with(path, meta, made_with or {}, by)
    return tensors, meta


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """A CSV artifact's rows (header -> cell text)."""
    import csv

    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_csv(path: str | Path, rows: list[Mapping[str, Any]], fields: list[str]) -> None:
    import csv

    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def file_sha256(path: str | Path) -> str:
    """The content hash that identifies an image (split) or a model file (the LLM cache)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
