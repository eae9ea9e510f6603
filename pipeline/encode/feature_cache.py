"""Encoding a split in resumable, shardable parts, reusing features already computed.

The split file (id, sha256 per image) is read in parts of ``part_size`` rows, streamed, so memory
does not grow with the collection. Each part becomes a parquet file in a work folder beside the
output, named by a key over the encoder's identity and the part's ids and content hashes: a part
file is valid for exactly that input, so a rerun after a crash reuses finished parts and never a
stale one. Under torchrun each rank takes a contiguous run of parts (every image once, no
padding); rank 0 then streams the parts, in order, into one output file and removes the folder.

Images whose content hash appears in a previous output made with the same encoder and
preprocessing are not encoded again: their features are copied (adding images to a pool encodes
only the new ones). Features are not bitwise independent of batch composition on CPU (README:
incremental encoding), so a copied row may differ from a fresh run's in the last float bits.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from pipeline.core.artifacts import ArtifactError, feature_matrix, feature_table, read_table, table_writer, write_table
from pipeline.core.distributed import Group, shard
from pipeline.encode.features import ImageEncoder, check_finite

log = logging.getLogger("nola")

IGNORED = ("dim", "versions")  # metadata that need not match for features to be reused


def same_encoder(made: dict[str, Any], meta: dict[str, Any]) -> bool:
    """Same encoder identity and preprocessing (library versions may differ)."""
    return {k: v for k, v in made.items() if k not in IGNORED} == {k: v for k, v in meta.items() if k not in IGNORED}


@dataclass
class Counts:
    encoded: int = 0  # images run through the encoder
    resumed: int = 0  # images in part files finished by an earlier, interrupted run
    reused: int = 0  # images whose features came from a previous output, by content hash


def parts_of(split_file: Path, part_size: int, parts: range) -> Iterator[pa.Table]:
    """Parts ``parts`` of the split file (columns id, sha256), read batch by batch."""
    rows = pq.ParquetFile(split_file)
    start, stop = parts.start * part_size, min(parts.stop * part_size, rows.metadata.num_rows)
    pending, position = None, 0
    for batch in rows.iter_batches(batch_size=part_size, columns=["id", "sha256"]):
        lo, hi = position, position + batch.num_rows
        position = hi
        if hi <= start:
            continue
        if lo >= stop:
            break
        piece = pa.Table.from_batches([batch.slice(max(start - lo, 0), min(hi, stop) - max(lo, start))])
        pending = piece if pending is None else pa.concat_tables([pending, piece])
        while pending.num_rows >= part_size:
            yield pending.slice(0, part_size).combine_chunks()
            pending = pending.slice(part_size)
    if pending is not None and pending.num_rows:
        yield pending.combine_chunks()


def part_key(meta: dict[str, Any], batch_size: int, part: pa.Table) -> str:
    digest = hashlib.sha256(json.dumps({**meta, "batch_size": batch_size}, sort_keys=True).encode())
    for image, content in zip(part.column("id").to_pylist(), part.column("sha256").to_pylist()):
        digest.update(f"{image}\0{content}\n".encode())
    return digest.hexdigest()


class PreviousFeatures:
    """Features of earlier outputs, found by content hash; only outputs whose encoder and
    preprocessing equal the current ones count. Holds the hash columns (Arrow, not Python
    objects) and reads feature row groups on demand."""

    def __init__(self, paths: Sequence[Path], meta: dict[str, Any]):
        self.sources = []
        for path in paths:
            try:
                file = pq.ParquetFile(path)
                made = json.loads(file.schema_arrow.metadata[b"nola"])
                hashes = file.read(columns=["sha256"]).column("sha256").combine_chunks()
            except (OSError, KeyError, pa.ArrowInvalid, json.JSONDecodeError):
                continue  # not a features file with hashes: nothing to reuse from it
            if same_encoder(made, meta):
                sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
                self.sources.append((file, hashes, np.cumsum([0, *sizes])))
        self._groups: dict[tuple[int, int], np.ndarray] = {}

    def _rows(self, source: int, group: int) -> np.ndarray:
        key = (source, group)
        if key not in self._groups:
            if len(self._groups) >= 2:  # parts come in order: the last two row groups are the useful ones
                self._groups.pop(next(iter(self._groups)))
            file = self.sources[source][0]
            self._groups[key] = feature_matrix(file.read_row_group(group, columns=["feature"]).column("feature"))
        return self._groups[key]

    def lookup(self, hashes: pa.Array) -> dict[int, np.ndarray]:
        """Position in ``hashes`` -> the finite feature of an earlier output with that content hash."""
        found: dict[int, np.ndarray] = {}
        for s, (_file, known, starts) in enumerate(self.sources):
            index = pc.index_in(hashes, value_set=known).to_numpy(zero_copy_only=False)
            for position, row in enumerate(index):
                if position in found or np.isnan(row):
                    continue
                group = int(np.searchsorted(starts, row, side="right")) - 1
                feature = self._rows(s, group)[int(row) - starts[group]]
                if np.isfinite(feature).all():  # a damaged row is encoded again, never copied on
                    found[position] = feature
        return found


def previous_outputs(outputs: Sequence[Path], repo: Path = Path(".")) -> list[Path]:
    """Earlier versions of ``outputs``: the files themselves when still there (a manual rerun),
    else the DVC cache copies that dvc.lock names (dvc repro deletes outputs before it runs a
    stage; reading its cache keeps the run-cache, which ``persist: true`` would disable)."""
    found = [p for p in outputs if p.is_file()]
    lock = repo / "dvc.lock"
    if len(found) == len(outputs) or not lock.is_file():
        return found
    wanted = {Path(p).as_posix() for p in outputs if not p.is_file()}
    md5s = [
        o["md5"]
        for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values()
        for o in stage.get("outs", [])
        if Path(o["path"]).as_posix() in wanted and "md5" in o
    ]
    if not md5s:
        return found
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        cached = [Path(dvc.cache.local.oid_to_path(md5)) for md5 in md5s]
    return found + [p for p in cached if p.is_file()]


def _read_part(path: Path) -> pa.Table | None:
    try:
        return read_table(path)[0] if path.is_file() else None
    except ArtifactError:
        return None


def _encode_part(
    out: Path,
    part: pa.Table,
    previous: PreviousFeatures,
    encoder: ImageEncoder,
    meta: dict[str, Any],
    root: Path,
    desc: str,
    counts: Counts,
) -> pa.Table:
    ids = part.column("id").to_pylist()
    found = previous.lookup(part.column("sha256"))
    missing = [i for i in range(len(ids)) if i not in found]
    fresh = encoder.encode(root, [ids[i] for i in missing], desc)
    check_finite(out, meta.get("encoder", "image"), [ids[i] for i in missing], fresh)
    rows = dict(zip(missing, fresh))
    features = np.stack([found[i] if i in found else rows[i] for i in range(len(ids))]).astype(np.float32)
    counts.encoded += len(missing)
    counts.reused += len(found)
    table = feature_table(ids, features)
    return table.add_column(1, "sha256", part.column("sha256"))


def encode_split(
    out: Path,
    split_file: Path,
    encoder: ImageEncoder,
    meta: dict[str, Any],
    root: Path,
    part_size: int,
    group: Group,
    previous: PreviousFeatures,
    desc: str,
    empty_dim: int | None = None,
) -> Counts:
    """Encode one split into ``out`` (id, sha256, feature); returns the counts summed over ranks.

    ``empty_dim``: an empty split (the test split of an unlabeled collection) is written as an empty
    file with features of this size; without it an empty split is an error."""
    total = pq.ParquetFile(split_file).metadata.num_rows
    if total == 0 and empty_dim is not None:
        if group.is_main:
            table = feature_table([], np.zeros((0, empty_dim), dtype=np.float32))
            write_table(out, table.add_column(1, "sha256", pa.array([], pa.string())), {**meta, "dim": empty_dim})
        return Counts()
    if total == 0:
        raise ArtifactError(f"{split_file}: no images to encode; check the split stage's output")
    work = out.parent / f".{out.name}.parts"
    work.mkdir(parents=True, exist_ok=True)
    count = -(-total // part_size)
    mine = shard(count, group.rank, group.world_size)
    counts = Counts()
    for part in parts_of(split_file, part_size, mine):
        path = work / f"{part_key(meta, encoder.batch_size, part)}.parquet"
        if _read_part(path) is not None:
            counts.resumed += part.num_rows
            continue
        write_table(path, _encode_part(out, part, previous, encoder, meta, root, desc, counts))
    group.barrier()
    if group.is_main:
        _assemble(out, split_file, work, meta, encoder.batch_size, part_size, count)
    summed = group.sum([counts.encoded, counts.resumed, counts.reused])
    return Counts(*(int(v) for v in summed))


def _assemble(
    out: Path, split_file: Path, work: Path, meta: dict[str, Any], batch_size: int, part_size: int, count: int
) -> None:
    """Stream the part files, in split order, into ``out``; then drop the work folder."""

    def part_table(part: pa.Table) -> pa.Table:
        table = _read_part(work / f"{part_key(meta, batch_size, part)}.parquet")
        if table is None:
            raise ArtifactError(f"{work}: a part file is missing; rerun the stage (finished parts are kept)")
        return table

    tables = (part_table(part) for part in parts_of(split_file, part_size, range(count)))
    first = next(tables)
    dim = first.schema.field("feature").type.list_size
    with table_writer(out, first.schema, {**meta, "dim": dim}) as writer:
        for table in itertools.chain([first], tables):
            writer.write_table(table)
    shutil.rmtree(work, ignore_errors=True)
