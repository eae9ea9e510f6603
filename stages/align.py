"""Stage align: DINO features of the pseudo-labelled images -> alignment head -> DL label per pool image."""

from pathlib import Path

from pipeline.core.artifacts import output_set, read_features, read_table, write_table, write_tensors
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.method import alignment
from pipeline.models.factory import dino_identity


def main(dino_pool: Path, pseudo_labels: Path, out_dir: Path, params: Path = Path("params.yaml")) -> None:
    p = load_params(params)
    ids, features, meta = read_features(dino_pool, made_with=dino_identity(p.dino), by="features_dino")
    selected, pl_meta = read_table(pseudo_labels)
    classes = pl_meta["classes"]
    head, history = alignment.fit_head(ids, features, selected, len(classes), p.align)
    head_meta = {
        **dino_identity(p.dino),
        "classes": classes,
        "hidden": p.align.hidden,
        "in_dim": int(features.shape[1]),
        "preprocess": meta["preprocess"],
    }
    with output_set(out_dir, last="dl_labels.parquet") as staging:
        write_tensors(staging / "head.safetensors", head.state_dict(), head_meta)
        write_table(
            staging / "dl_labels.parquet",
            alignment.dl_label_table(ids, alignment.dl_probs(head, features)),
            {"classes": classes},
        )
    log.info(
        "align: head trained on %d images (final loss %.4f); DL labels for %d pool images -> %s",
        selected.num_rows,
        history[-1],
        len(ids),
        out_dir,
    )


if __name__ == "__main__":
    run(main)
