"""Stage align: DINO features of the pseudo-labelled images -> alignment head -> DL label per pool image."""

from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.core.artifacts import ArtifactError, check_encoder, read_features, read_table, write_table, write_tensors
from pipeline.core.params import AlignParams, DinoParams, load_section
from pipeline.core.stage import log, run
from pipeline.method import alignment
from pipeline.models.factory import dino_identity


def main(dino_pool: Path, pseudo_labels: Path, out_dir: Path, params: Path = Path("params.yaml")) -> None:
    dino = load_section(params, "dino", DinoParams)
    cfg = load_section(params, "align", AlignParams)
    ids, features, meta = read_features(dino_pool)
    check_encoder(dino_pool, meta, dino_identity(dino), "features_dino")
    selected, pl_meta = read_table(pseudo_labels)
    classes = pl_meta["classes"]
    row = {image_id: i for i, image_id in enumerate(ids)}
    unknown = [i for i in selected.column("id").to_pylist() if i not in row]
    if unknown:
        raise ArtifactError(f"{pseudo_labels}: ids missing from {dino_pool} (e.g. {unknown[:3]}); rerun features_dino")
    if selected.num_rows == 0:
        raise ArtifactError(f"{pseudo_labels}: no pseudo-labelled images; the alignment head cannot be trained")
    x = features[[row[i] for i in selected.column("id").to_pylist()]]
    y = selected.column("label").to_numpy()
    head, history = alignment.train_head(x, y, len(classes), cfg.hidden, cfg.lr, cfg.batch_size, cfg.epochs, cfg.seed)
    write_tensors(
        out_dir / "head.safetensors",
        head.state_dict(),
        {
            **dino_identity(dino),
            "classes": classes,
            "hidden": cfg.hidden,
            "in_dim": int(x.shape[1]),
            "preprocess": meta["preprocess"],
        },
    )
    label, conf = alignment.predict(head, features)
    write_table(
        out_dir / "dl_labels.parquet",
        pa.table(
            {
                "id": pa.array(ids, type=pa.string()),
                "label": pa.array(label.astype(np.int32)),
                "prob": pa.array(conf.astype(np.float32)),
            }
        ),
        {"classes": classes},
    )
    log.info(
        "align: head trained on %d images (final loss %.4f); DL labels for %d pool images -> %s",
        len(y),
        history[-1],
        len(ids),
        out_dir,
    )


if __name__ == "__main__":
    run(main)
