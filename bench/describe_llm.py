"""Throughput of the embedded LLM backend: descriptions/s and tokens/s, against a baseline run here.

Baseline: llama-cpp-python's own ``create_completion`` loop on the same model, prompts, seeds and
threads (no context reset, no cache, no cleaning). Then the `llama_cpp` backend through the
completion cache, cold (every prompt generated) and warm (every prompt from the cache), plus
cleaning. Ratios are against the baseline measured in the same run, so they compare across machines.

    python bench/describe_llm.py --classes 4 --samples 3 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.params import DescribeParams  # noqa: E402
from pipeline.data.benchmarks import EUROSAT_CLASS_NAMES  # noqa: E402
from pipeline.describe.cleaning import clean_sentences, clip_token_count  # noqa: E402
from pipeline.describe.llm import Sampling, create_backend  # noqa: E402
from pipeline.describe.llm.cache import CompletionCache, fill, generate_cached  # noqa: E402
from pipeline.describe.prompts import load_prompts  # noqa: E402

CLASSES = list(EUROSAT_CLASS_NAMES.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=6, help="how many of the satellite domain's prompts")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    params = DescribeParams(
        source="llama_cpp", samples=args.samples, max_tokens=args.max_tokens, llama_cpp={"threads": args.threads}
    )
    sampling = Sampling.from_params(params)
    prompts = load_prompts(Path(__file__).resolve().parents[1] / "prompts" / "satellite.yaml")[: args.prompts]
    requests = [(p, c) for c in CLASSES[: args.classes] for p in prompts]
    backend = create_backend(params)
    clip_token_count("load CLIP's tokenizer before timing")
    answers = len(requests) * args.samples
    runs: dict[str, tuple[int, float]] = {}  # label -> (tokens, fastest seconds over the repeats)

    def record(label: str, tokens: int, seconds: float) -> None:
        runs[label] = (tokens, min(seconds, runs.get(label, (0, float("inf")))[1]))

    for _ in range(args.repeats):  # interleaved, fastest kept: the machine may be shared
        start, tokens = time.perf_counter(), 0
        for template, name in requests:
            for seed in sampling.sample_seeds():
                out = backend.llm.create_completion(
                    fill(template, name),
                    max_tokens=sampling.max_tokens,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    top_k=0,
                    min_p=0.0,
                    stop=list(sampling.stop),
                    seed=seed,
                )
                tokens += out["usage"]["completion_tokens"]
        record("llama-cpp-python loop (baseline)", tokens, time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            cache = CompletionCache(tmp)
            for label in ("llama_cpp backend + cleaning, cold cache", "llama_cpp backend + cleaning, warm cache"):
                start = time.perf_counter()
                completions, stats = generate_cached(backend, cache, requests, sampling)
                for c in completions:
                    clean_sentences(list(c.texts), params.min_words)
                record(label, stats.tokens, time.perf_counter() - start)
    rows = [(label, answers, tokens, secs) for label, (tokens, secs) in runs.items()]

    base_rate = rows[0][1] / rows[0][3]
    print(
        f"model {backend.identity['model']}, {len(requests)} prompts x {args.samples} samples, "
        f"max_tokens {args.max_tokens}, threads {args.threads or 'default'}, fastest of {args.repeats}\n"
    )
    print("| run | descriptions | tokens | seconds | descriptions/s | tokens/s | descriptions/s vs baseline |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, n, tok, secs in rows:
        rate = n / secs
        print(f"| {label} | {n} | {tok} | {secs:.2f} | {rate:.2f} | {tok / secs:.1f} | {rate / base_rate:.2f}x |")


if __name__ == "__main__":
    main()
