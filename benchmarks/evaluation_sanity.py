"""Do the evaluation metrics separate what they should? Three comparisons on PiJAMA:

  (a) Art Tatum train split vs Art Tatum test split   (real vs real: the ceiling)
  (b) other pianists' test split vs Art Tatum test     (another style)
  (c) Art Tatum test with pitches shuffled within each piece vs Art Tatum test

    python benchmarks/evaluation_sanity.py [--data ../shared/data] [--out out/eval_sanity]

Writes one full report per comparison and prints the headline table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tatumflow.evaluation.report import evaluate, load_set
from tatumflow.evaluation.sanity import shuffle_pitches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("out/eval_sanity"))
    args = ap.parse_args()
    index = args.data / "pijama" / "index.csv"
    tatum_test = load_set(index, name="Tatum test", where={"pianist": "Art Tatum", "split": "test"}).perfs
    tatum_train = load_set(index, name="Tatum train", where={"pianist": "Art Tatum", "split": "train"}).perfs
    others = [p for p in load_set(index, name="others test", where={"split": "test"}).perfs
              if "Art Tatum" not in p.metadata.get("source", "")]
    rng = np.random.default_rng(0)
    shuffled = [shuffle_pitches(p, rng) for p in tatum_test]
    runs = {
        "(a) Tatum train vs Tatum test": (tatum_train, "Tatum train"),
        "(b) others test vs Tatum test": (others, "others test"),
        "(c) shuffled Tatum test vs Tatum test": (shuffled, "Tatum test, pitches shuffled"),
    }
    rows = []
    for label, (gen, name) in runs.items():
        rep = evaluate(gen, tatum_test, args.out / label[1], gen_name=name, ref_name="Tatum test", progress=False)
        s, pw, st, c = rep["set_vs_set"]["summary"], rep["pairwise_pooled"], rep["style"], rep["set_vs_set"]
        oa = lambda k: c[k]["oa_intra_ref_vs_inter"]  # noqa: E731
        rows.append((label, len(gen), s["mean_oa"], s["mean_kl"], oa("melody.interval"), oa("melody.stepwise_ratio"),
                     oa("harmony.chord_type"), oa("rhythm.log_ioi"), oa("dynamics.velocity_hist"),
                     pw["transition_cosine"], st["gen_mean"] if st else float("nan")))
    print("| comparison | pieces | mean OA | mean KL (bits) | OA intervals | OA stepwise | OA chord types "
          "| OA log-IOI | OA velocities | PC transition cos | P(Art Tatum) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join([r[0], str(r[1])] + [f"{v:.3f}" for v in r[2:]]) + " |")
    print(f"\nreference: {len(tatum_test)} Art Tatum test pieces; reports in {args.out}/")


if __name__ == "__main__":
    main()
