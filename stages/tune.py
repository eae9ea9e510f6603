"""Stage tune: DL labels + strong views -> prompt tokens, LayerNorms and classifier of CLIP."""

from dataclasses import asdict
from pathlib import Path

from pipeline.core import hardware
from pipeline.core.artifacts import output_set, read_table, write_csv, write_tensors
from pipeline.core.distributed import process_group
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.data.datasets import image_root
from pipeline.method.text_classifier import read_classifiers
from pipeline.method.tuning import scaled_lr, tune
from pipeline.method.visual_prompts import PromptedCLIP
from pipeline.models.factory import clip_identity, create_clip


def main(dataset: str, dl_labels: Path, classifiers: Path, out_dir: Path, params: Path = Path("params.yaml")) -> None:
    p = load_params(params)
    cfg = p.tune
    hw = hardware.resolve(cfg.device, cfg.precision, "tune")
    text = read_classifiers(classifiers, clip_identity(p.clip))
    labels, _ = read_table(dl_labels, made_with={"classes": text.classes}, by="align")
    model, preprocess, _ = create_clip(p.clip)
    prompted = PromptedCLIP(model.visual, text.cde, cfg.prompt_tokens, text.logit_scale, cfg.head)
    log.info(
        "tune: %d pool images, %d prompt tokens, %s head, batch %d, lr %.2e %s, %d epochs (%s, %s)",
        labels.num_rows,
        cfg.prompt_tokens,
        cfg.head,
        cfg.batch_size,
        scaled_lr(cfg),
        cfg.schedule,
        cfg.epochs,
        hw.device.type,
        hw.precision,
    )
    with process_group(p.compute.backend, hw.device.type) as group:
        history = tune(
            prompted,
            image_root(p.dataset(dataset).data),
            labels.column("id").to_pylist(),
            labels.column("label").to_numpy(),
            preprocess,
            cfg,
            group,
            hw,
        )
    if not group.is_main:
        return
    meta = {
        **clip_identity(p.clip),
        "classes": text.classes,
        "prompt_tokens": cfg.prompt_tokens,
        "logit_scale": text.logit_scale,
        "head": cfg.head,
        "preprocess": preprocess.as_dict(),
        "compute": hw.as_dict(),
    }
    with output_set(out_dir, last="log.csv") as staging:
        write_tensors(staging / "prompt.safetensors", prompted.trainable_state(), meta)
        write_csv(staging / "log.csv", [asdict(h) for h in history], ["epoch", "loss", "agreement", "lr"])
    log.info(
        "tune: final loss %.4f, agreement with DL labels %.3f -> %s", history[-1].loss, history[-1].agreement, out_dir
    )


if __name__ == "__main__":
    run(main)
