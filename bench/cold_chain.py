"""The first requests after a shift, with and without the chained warm-up, on the local plane.

    python bench/cold_chain.py [--runs N] [--concurrent C]

Builds a project where ``front`` (Lambda) calls ``back`` (Lambda) through the environment's
router, on a real local plane. Each run deploys a new release of ``front`` after ``back``'s
``live`` alias moved to a fresh version (no environment started: as after its idle
environments were recycled), once without ``calls:`` and once with ``calls: [back]``, then
sends C requests at once and one more. It prints, per mode, how many of those requests met a
cold start on each hop and the latency (ms) of the first requests against the later one.
Figures are this machine's; compare the two modes, not absolute numbers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.local.plane.lifecycle import stop_plane
from tests.local.support.chain import make_chain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=2)
    args = parser.parse_args()
    keep = f"  keep_warm: {{every: 1m, concurrency: {args.concurrent}}}"
    with tempfile.TemporaryDirectory() as tmp:
        chain = make_chain(Path(tmp) / "repo")
        try:
            rows = []
            for mode, calls in (("without calls:", ""), ("with calls: [back]", "calls: [back]")):
                first: list[float] = []
                later: list[float] = []
                cold = {"front": 0, "back": 0}
                for run in range(args.runs):
                    commit = chain.commit_front(f"{mode}-{run}", calls=calls, keep_warm=keep)
                    chain.recycle_back()
                    chain.deploy("front", commit)
                    answers = chain.first_requests(args.concurrent)
                    first += [a["ms"] for a in answers[:-1]]
                    later.append(answers[-1]["ms"])
                    cold["front"] += sum(a["front_cold"] for a in answers[:-1])
                    cold["back"] += sum(a["back_cold"] for a in answers[:-1])
                total = args.runs * args.concurrent
                rows.append((mode, cold["front"], cold["back"], total, statistics.median(first),
                             max(first), statistics.median(later)))
        finally:
            stop_plane(chain.state_dir)
    print(f"{args.runs} runs, {args.concurrent} concurrent first requests after each shift")
    print(f"{'mode':<20} {'front cold':>10} {'back cold':>10} {'first p50 ms':>13} {'first max ms':>13} "
          f"{'next p50 ms':>12}")
    for mode, front, back, total, p50, worst, nxt in rows:
        print(f"{mode:<20} {f'{front}/{total}':>10} {f'{back}/{total}':>10} {p50:>13.1f} {worst:>13.1f} "
              f"{nxt:>12.1f}")


if __name__ == "__main__":
    main()
