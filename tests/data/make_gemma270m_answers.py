"""Writes gemma270m_raw_answers.json: 60 raw answers of the packaged Gemma 3 270M (the default
``llama_cpp`` backend, default sampling, 1 sample, seed 0), the answer to each of the
satellite domain's 6 few-shot prompts for EuroSAT's 10 classes. Run once; the answers are then
labelled by hand (``expect``: the gate's reason to drop it, or ``keep``) and tests/test_gate.py
checks the gate against those labels.

The stored file was made with the examples and sampling it records (the earlier examples, and
temperature 0.99): those answers hold the failures the gate exists for, so it is kept. A rerun
writes answers of today's defaults, and carries a label over only for the very same answer.

    python tests/data/make_gemma270m_answers.py [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.describe_quality import CLASS_LISTS  # noqa: E402
from pipeline.core.params import DescribeParams  # noqa: E402
from pipeline.describe.llm import Sampling, create_backend  # noqa: E402
from pipeline.describe.llm.cache import CompletionCache, generate_cached  # noqa: E402
from pipeline.describe.prompts import load_prompt_file  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None, help="reuse completions cached by bench/describe_quality.py")
    args = parser.parse_args()
    domain, classes = CLASS_LISTS["eurosat"]
    params = DescribeParams(samples=1, cache_dir=args.cache_dir)
    prompt_file = load_prompt_file(ROOT / "prompts" / f"{domain}.yaml")
    templates = prompt_file.templates(params.mode)
    backend = create_backend(params)
    sampling = Sampling.from_params(params)
    requests = [(t, c) for c in classes for t in templates]
    completions, _ = generate_cached(backend, CompletionCache(params.cache_dir), requests, sampling)
    questions = dict(zip(templates, prompt_file.prompts, strict=True))
    out = Path(__file__).with_name("gemma270m_raw_answers.json")
    old = (
        {(a["class"], a["question"], a["raw"]): a.get("expect") for a in json.loads(out.read_text())["answers"]}
        if out.exists()
        else {}
    )
    doc = {
        "generator": backend.identity,
        "sampling": sampling.as_dict(),
        "sample": 0,
        "prompt_file": f"prompts/{domain}.yaml",
        "examples": [list(e) for e in prompt_file.examples],
        "classes": classes,
        "answers": [
            {"class": c, "question": questions[t], "raw": raw, "expect": old.get((c, questions[t], raw))}
            for (t, c), raw in zip(requests, (completion.texts[0] for completion in completions), strict=True)
        ],
    }
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
