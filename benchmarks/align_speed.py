"""Performance-to-score alignment speed and quality on all of PercePiano.

    python benchmarks/align_speed.py [--data ../shared/data/percepiano]

Aligns every performance segment to its score (``score_midi/``) in one process
and prints the time and the distribution of match rates (share of the score's
notes played) and extra-note rates. Then a long piece: consecutive segments
(each performance with its own score) joined end to end into about ten minutes
of music, aligned whole, with its time, peak memory (tracemalloc) and match rate,
``assess --score``'s alignment and features on it, and the whole rating by each
shipped assessor (features, note rows, alignment with the score, the trees).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

from tatumflow import Performance
from tatumflow.align import align, score_features, score_for_segment
from tatumflow.assessment.shipped import DEFAULT_MODEL, SCORE_MODEL, ForestAssessor
from tatumflow.midi import read_midi


def joined(pairs, seconds: float) -> tuple[Performance, Performance]:
    """Performances (and their scores) one after another, a second apart, until ``seconds``."""
    parts, t_p, t_s = [], 0.0, 0.0
    for p, s in pairs:
        parts.append((p, t_p, s, t_s))
        t_p, t_s = t_p + p.end + 1.0, t_s + s.end + 1.0
        if t_p >= seconds:
            break

    def cat(k):  # k = 0: the performances, k = 2: the scores
        notes = [(q[k].notes, q[k + 1]) for q in parts]
        on = np.concatenate([n["onset"] + off for n, off in notes])
        return Performance.from_arrays(on, np.concatenate([n["offset"] + off for n, off in notes]),
                                       np.concatenate([n["pitch"] for n, _ in notes]),
                                       np.concatenate([n["velocity"] for n, _ in notes]))
    return cat(0), cat(2)


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
    perf, score = joined(perfs, 600.0)
    align(perf, score)  # warm up
    t0 = time.perf_counter()
    r = align(perf, score)
    dt = time.perf_counter() - t0
    tracemalloc.start()
    align(perf, score)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t0 = time.perf_counter()
    score_features(perf, score)
    dt_f = time.perf_counter() - t0
    print(f"long piece: {perf.end / 60:.1f} min, {len(perf.notes):,} performed and {len(score.notes):,} written notes: "
          f"aligned in {dt:.2f}s (peak {peak / 2**20:.0f} MB), match rate {r.match_rate:.3f}; "
          f"alignment and score-relative features {dt_f:.2f}s")
    for model, s in ((DEFAULT_MODEL, None), (SCORE_MODEL, score)):
        fa = ForestAssessor.load(model)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            X, notes, _ = fa.inputs(perf, s)
            fa.predict_with_spread(X, None if notes is None else [notes])
            times.append(time.perf_counter() - t0)
        print(f"long piece rated by {model.name} ({fa.meta['model']}): {min(times):.2f}s (best of 3)")


if __name__ == "__main__":
    main()
