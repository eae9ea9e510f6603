"""Stage tune: DL labels + strong views -> prompt tokens, LayerNorms and classifier of CLIP."""

from dataclasses import asdict
from pathlib import Path

from pipeline.core import hardware
from pipeline.core.artifacts import check_encoder, read_table, read_tensors, write_csv, write_tensors
from pipeline.core.distributed import process_group
from pipeline.core.params import ClipParams, ComputeParams, TuneParams, load_dataset, load_section
from pipeline.core.stage import log, run
from pipeline.data.datasets import image_root
from pipeline.method.tuning import scaled_lr, tune
from pipeline.method.visual_prompts import PromptedCLIP
from pipeline.models.factory import clip_identity, create_clip


def main(dataset: str, dl_labels: Path, classifiers: Path, out_dir: Path, params: Path = Path("params.yaml")) -> None:
    data = load_dataset(params, dataset).data
    clip = load_section(params, "clip", ClipParams)
    cfg = load_section(params, "tune", TuneParams)
    compute = load_section(params, "compute", ComputeParams)
    hw = hardware.resolve(cfg.device, cfg.precision, "tune")
    labels, meta = read_table(dl_labels)
    tensors, text_meta = read_tensors(classifiers)
    check_encoder(classifiers, text_meta, clip_identity(clip), "text_classifier")
    check_encoder(dl_labels, meta, {"classes": text_meta["classes"]}, "align")
    model, preprocess, _ = create_clip(clip)
    logit_scale = float(tensors["logit_scale"])
    prompted = PromptedCLIP(model.visual, tensors["cde"], cfg.prompt_tokens, logit_scale)
    log.info(
        "tune: %d pool images, %d prompt tokens, batch %d, lr %.2e, %d epochs (%s, %s)",
        labels.num_rows,
        cfg.prompt_tokens,
        cfg.batch_size,
        scaled_lr(cfg),
        cfg.epochs,
        hw.device.type,
        hw.precision,
    )
    with process_group(compute.backend, hw.device.type) as group:
        history = tune(
            prompted,
            image_root(data),
            labels.column("id").to_pylist(),
            labels.column("label").to_numpy(),
            preprocess,
            cfg,
            group,
            hw,
        )
    if not group.is_main:
        return
    write_tensors(
        out_dir / "prompt.safetensors",
        prompted.trainable_state(),
        {
            **clip_identity(clip),
            "classes": meta["classes"],
            "prompt_tokens": cfg.prompt_tokens,
            "logit_scale": logit_scale,
            "preprocess": preprocess.as_dict(),
            "compute": hw.as_dict(),
        },
    )
    write_csv(out_dir / "log.csv", [asdict(h) for h in history], ["epoch", "loss", "agreement", "lr"])
    log.info(
        "tune: final loss %.4f, agreement with DL labels %.3f -> %s", history[-1].loss, history[-1].agreement, out_dir
    )


if __name__ == "__main__":
    run(main)
