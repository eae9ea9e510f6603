"""``make bench``: benchmarks 1-3 (features, prompt tuning, memory), each table, then one summary line:

bench: clip_b32=<ratio>x dino_b16=<ratio>x dino_b16_limit=<percent>% tune=<ratio>x rss_10x=<ratio>

python -m bench
"""

from __future__ import annotations

import os

from . import features, memory, tune


def main() -> None:
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    encoded, info = features.run()
    print(features.report(encoded, info), flush=True)
    tuned = tune.run()
    print(tune.report(tuned), flush=True)
    rss = memory.run_isolated()
    print(memory.report(rss))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    by_name = {r.name: r for r in encoded}
    print(
        f"bench: clip_b32={by_name['clip_b32'].ratio:.2f}x dino_b16={by_name['dino_b16'].ratio:.2f}x "
        f"dino_b16_limit={100 * by_name['dino_b16'].fraction:.0f}% tune={tuned['ratio']:.2f}x "
        f"rss_10x={rss['ratio']:.2f}"
    )


if __name__ == "__main__":
    main()
