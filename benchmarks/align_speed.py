"""Performance-to-score alignment speed and quality on all of PercePiano.

    python benchmarks/align_speed.py [--data ../shared/data/percepiano]

Aligns every performance segment to its score (``score_midi/``) in one process
and prints the time and the distribution of match rates (share of the score's
notes played), extra-note rates and the score-relative features' ranges.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tatumflow.align import align, score_for_segment
from tatumflow.midi import read_midi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "percepiano")
    a = ap.parse_args()
    files = sorted((a.data / "midi").glob("*.mid"))
    pairs = [(f, score_for_segment(a.data, f.name)) for f in files]
    t_read = time.perf_counter()
    perfs = [(read_midi(f), read_midi(s)) for f, s in pairs if s is not None]
    t0 = time.perf_counter()
    res = [align(p, s) for p, s in perfs]
    dt = time.perf_counter() - t0
    match = np.array([r.match_rate for r in res])
    extra = np.array([r.extra_rate for r in res])
    notes = sum(len(p) for p, _ in perfs)
    print(f"{len(res)} of {len(files)} segments aligned ({notes:,} performed notes): {dt:.1f}s "
          f"({1e3 * dt / len(res):.1f} ms per segment; reading {t0 - t_read:.1f}s)")
    print("| | p10 | median | p90 | min |\n|---|---:|---:|---:|---:|")
    for name, v in (("match rate", match), ("extra-note rate", extra)):
        print(f"| {name} | {np.percentile(v, 10):.3f} | {np.median(v):.3f} | {np.percentile(v, 90):.3f} | {v.min():.3f} |")


if __name__ == "__main__":
    main()
