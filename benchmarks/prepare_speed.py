"""Wall time of `tatumflow prepare` on all of PiJAMA into a fresh store.

    python benchmarks/prepare_speed.py [--data ../shared/data] [--workers 2]

Runs the real command (a subprocess, so process start-up and imports count),
then a second time to show that finished work is skipped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    index = args.data / "pijama" / "index.csv"
    exe = [sys.executable, "-m", "tatumflow.cli.main"]
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "pijama"
        rows = []
        for label in ("fresh", "re-run"):
            t0 = time.perf_counter()
            subprocess.run(exe + ["prepare", str(index), "--out", str(store), "--workers", str(args.workers)],
                           check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            rows.append((label, time.perf_counter() - t0))
        st = json.loads(subprocess.run(exe + ["inspect", str(store), "--json"], check=True,
                                       capture_output=True, text=True).stdout)
    print(f"tatumflow prepare {index} --workers {args.workers}")
    print("| run | seconds |\n|---|---:|")
    for label, t in rows:
        print(f"| {label} | {t:.2f} |")
    print(f"\nfiles {st['files']}, failed {st['failed']}, {st['hours']} h, {st['notes']:,} notes, "
          f"{st['tokens']:,} tokens, {st['tokens_per_note']} tokens/note, {st['tokens_per_second']} tokens/s")


if __name__ == "__main__":
    main()
