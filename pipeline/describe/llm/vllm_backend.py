"""Offline batched generation with vLLM (``vllm.LLM`` + ``SamplingParams``), for users with GPUs.

vLLM is an optional install (requirements-vllm.txt), imported only when ``describe.source`` is
``vllm``. Written against vLLM's documented offline API; not run in this project's CI (no GPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.core.params import DescribeParams
from pipeline.describe.llm import Completion, Sampling, chat_messages, import_optional


class VllmBackend:
    def __init__(self, llm: Any, sampling_params: type, identity: dict[str, str]) -> None:
        self.llm = llm
        self.sampling_params = sampling_params
        self.identity = identity

    def generate(self, prompts: Sequence[str], sampling: Sampling) -> list[Completion]:
        sp = self.sampling_params(
            n=sampling.samples,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            stop=list(sampling.stop),
            seed=sampling.seed,
        )
        if self.identity["mode"] == "chat":
            outputs = self.llm.chat([chat_messages(p) for p in prompts], sp, use_tqdm=False)
        else:
            outputs = self.llm.generate(list(prompts), sp, use_tqdm=False)
        return [
            Completion(tuple(o.text for o in out.outputs), sum(len(o.token_ids) for o in out.outputs))
            for out in outputs
        ]


def create(params: DescribeParams) -> VllmBackend:
    vllm = import_optional(
        "vllm",
        "describe.source = 'vllm' but vLLM is not installed: pip install -r "
        "requirements-vllm.txt (Linux with a CUDA GPU), or choose describe.source = 'llama_cpp' "
        "or 'openai'",
    )
    v = params.vllm
    llm = vllm.LLM(
        model=v.model,
        tensor_parallel_size=v.tensor_parallel_size,
        gpu_memory_utilization=v.gpu_memory_utilization,
        max_model_len=v.max_model_len,
        dtype=v.dtype,
        seed=params.seed,
    )
    return VllmBackend(llm, vllm.SamplingParams, {"backend": "vllm", "model": v.model, "mode": params.mode})
