"""Quality of the default describe path, for reading: kept and dropped answers by reason, time, and
tokens/s, and three kept sentences per class, on fixed class lists (EuroSAT's 10 classes, DTD's first 10).

    python bench/describe_quality.py --dataset eurosat --samples 10 --out /tmp/eurosat.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.params import DescribeParams  # noqa: E402
from pipeline.data.benchmarks import EUROSAT_CLASS_NAMES  # noqa: E402
from pipeline.describe.descriptions import describe_classes  # noqa: E402
from pipeline.describe.llm.cache import GenerationStats  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLASS_LISTS = {  # the names the benchmarks give these classes (pipeline/data/benchmarks.py)
    "eurosat": ("satellite", list(EUROSAT_CLASS_NAMES.values())),
    "dtd": (
        "textures",
        [
            "banded",
            "blotchy",
            "braided",
            "bubbly",
            "bumpy",
            "chequered",
            "cobwebbed",
            "cracked",
            "crosshatched",
            "crystalline",
        ],
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(CLASS_LISTS), default="eurosat")
    parser.add_argument("--samples", type=int, default=DescribeParams().samples)
    parser.add_argument("--cache-dir", default=None, help="a completion cache to reuse (default: none)")
    parser.add_argument("--out", type=Path, default=None, help="also write the descriptions.json document here")
    args = parser.parse_args()

    domain, classes = CLASS_LISTS[args.dataset]
    params = DescribeParams(samples=args.samples, cache_dir=args.cache_dir)
    stats = GenerationStats()
    start = time.perf_counter()
    doc = describe_classes(params, classes, ROOT / "prompts" / f"{domain}.yaml", stats)
    seconds = time.perf_counter() - start
    cleaning, gated = doc["cleaning"], doc["gate"]
    print(
        f"{args.dataset}: {len(classes)} classes, {cleaning['answers']} answers in {seconds:.0f} s "
        f"({cleaning['answers'] / seconds:.2f} answers/s), model {doc['generator']['model']}, mode {params.mode}"
    )
    print(f"{stats.summary()}: {stats.tokens / seconds:.1f} tokens/s")
    print(f"cleaning: {json.dumps(cleaning)}")
    print(f"gate: {json.dumps(gated)}")
    added = sorted(doc["fallback"]) or "none"
    print(f"kept {gated['kept']} of {cleaning['answers']}; templates added for {added} (descriptions.json: fallback)")
    for c in classes:
        shown = doc["descriptions"][c][:3]
        print(f"- {c} ({len(doc['descriptions'][c])} kept): " + " | ".join(shown))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
