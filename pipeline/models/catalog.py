"""Models worth trying, for ``python -m pipeline models``: names that open_clip / timm know, with why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Suggestion:
    model: str
    weights: str
    note: str


CLIP = [
    Suggestion("ViT-B-32", "openai", "the paper's model; 4.4 GFLOPs per image, the fastest"),
    Suggestion("ViT-B-32", "laion2b_s34b_b79k", "same size, trained on LAION-2B; often better zero-shot"),
    Suggestion("ViT-B-16", "openai", "finer patches: about 4x the compute of B/32, usually a few points better"),
    Suggestion("ViT-B-16", "laion2b_s34b_b88k", "B/16 trained on LAION-2B"),
    Suggestion("ViT-L-14", "openai", "large; needs a GPU for the tune stage"),
    Suggestion("ViT-L-14", "datacomp_xl_s13b_b90k", "large, DataComp-1B weights; strong zero-shot"),
]

DINO = [
    Suggestion("vit_base_patch16_224.dino", "true", "the paper's DINO ViT-B/16 (768-d CLS feature)"),
    Suggestion("vit_small_patch16_224.dino", "true", "DINO ViT-S/16: about 4x cheaper, 384-d"),
    Suggestion("vit_base_patch14_dinov2.lvd142m", "true", "DINOv2 ViT-B/14; set dino.kwargs {img_size: 224}"),
    Suggestion("vit_small_patch14_dinov2.lvd142m", "true", "DINOv2 ViT-S/14"),
]


def missing() -> list[str]:
    """Suggestions the installed open_clip / timm do not know (an upgrade renamed them)."""
    import open_clip
    import timm

    pretrained = set(open_clip.list_pretrained())
    gone = [f"{s.model} {s.weights}" for s in CLIP if (s.model, s.weights) not in pretrained]
    known = set(timm.list_models(pretrained=True))
    return gone + [s.model for s in DINO if s.model not in known]


def table() -> str:
    rows = ["CLIP (clip.model, clip.pretrained):"]
    rows += [f"  {s.model:<12} {s.weights:<24} {s.note}" for s in CLIP]
    rows += ["", "DINO (dino.model, dino.pretrained):"]
    rows += [f"  {s.model:<34} {s.note}" for s in DINO]
    rows += [
        "",
        "Any open_clip name and tag (open_clip.list_pretrained()) or timm model (timm.list_models('*dino*'))",
        "works; a local weights file goes in clip.pretrained / dino.pretrained for offline machines.",
    ]
    return "\n".join(rows)
