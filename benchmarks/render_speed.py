"""Audio rendering speed: seconds of audio per second of compute, both renderers.

    python benchmarks/render_speed.py [--data ../shared/data] [--pieces 3]

Renders the first ``--pieces`` PiJAMA pieces that last 2.5-3.5 minutes to a WAV
file (`render_file`: the whole path, normalisation and encoding included) with
the SoundFont renderer (when TinySoundFont and a SoundFont are installed) and
the built-in piano. One process; torch is not involved.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tatumflow.midi import read_midi
from tatumflow.render.audio import _tinysoundfont, find_soundfont, render_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--pieces", type=int, default=3)
    args = ap.parse_args()
    pieces = []
    for f in sorted((args.data / "pijama" / "midi").rglob("*.midi")):
        p = read_midi(f)
        if 150 <= p.end <= 210:
            pieces.append((f, p))
        if len(pieces) == args.pieces:
            break
    renderers = (["soundfont"] if find_soundfont() and _tinysoundfont() else []) + ["builtin"]
    print("| renderer | piece | notes | audio s | compute s | x real time |\n|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for r in renderers:
            for f, p in pieces:
                t0 = time.perf_counter()
                a = render_file(p, Path(tmp) / "x.wav", renderer=r)
                dt = time.perf_counter() - t0
                print(f"| {a.describe()} | {f.stem[:40]} | {len(p)} | {p.end:.0f} | {dt:.2f} | {p.end / dt:.0f} |")


if __name__ == "__main__":
    main()
