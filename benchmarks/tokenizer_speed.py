"""End-to-end tokenizer speed (MIDI file -> ids, one process) on PiJAMA.

    python benchmarks/tokenizer_speed.py [--data ../shared/data] [--files N]

Three tokenizers over the same files, side by side:

* TatumFlow ``PerformanceTokenizer`` (symusic reader, vectorised numpy encoder);
* miditok ``MIDILike`` with sustain pedals and 32 velocities (its own reader);
* a straightforward pretty_midi implementation of TatumFlow's token scheme
  (Python loops over notes and events), written here as the baseline.

Prints a table of seconds, files/s, notes/s and the speed-up of TatumFlow,
plus tokens per note and per second of music. Not a test: numbers only.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from tatumflow import PerformanceTokenizer, read_midi


def pretty_midi_tokenize(path: Path, *, step: float = 0.01, max_shift: int = 500, bins: int = 32) -> list[int]:
    """TatumFlow's note_off token scheme, written the obvious way with pretty_midi.

    Same id layout as ``PerformanceTokenizer()`` (715 ids), built event by event.
    """
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    events = []  # (step, priority, pitch, tokens)
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        for n in inst.notes:
            if not 21 <= n.pitch <= 108:
                continue
            on = int(round(n.start / step))
            off = max(int(round(n.end / step)), on + 1)
            vel_bin = n.velocity * bins // 128
            events.append((on, 3, n.pitch, [681 + vel_bin, 505 + n.pitch - 21]))
            events.append((off, 1, n.pitch, [593 + n.pitch - 21]))
        down = None
        for cc in inst.control_changes:
            if cc.number != 64:
                continue
            t = int(round(cc.time / step))
            if cc.value >= 64 and down is None:
                down = t
            elif cc.value < 64 and down is not None:
                events.append((down, 2, 0, [713]))
                events.append((max(t, down + 1), 0, 0, [714]))
                down = None
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    ids = [1]
    now = 0
    for t, _, _, toks in events:
        gap = t - now
        while gap > 0:
            s = min(gap, max_shift)
            ids.append(5 + s - 1)
            gap -= s
        now = t
        ids.extend(toks)
    ids.append(2)
    return ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--files", type=int, default=0, help="use N files spread over the set (0 = all)")
    args = ap.parse_args()
    index = args.data / "pijama" / "index.csv"
    rows = list(csv.DictReader(open(index, encoding="utf-8")))
    files = [index.parent / r["path"] for r in rows]
    if args.files:
        files = [files[i] for i in np.linspace(0, len(files) - 1, args.files).astype(int)]

    tok = PerformanceTokenizer()
    notes = 0
    seconds_music = 0.0
    tokens = 0
    t0 = time.perf_counter()
    for f in files:
        perf = read_midi(f)
        ids = tok.encode(perf)
        notes += len(perf)
        seconds_music += perf.end
        tokens += ids.size
    t_tf = time.perf_counter() - t0

    from miditok import MIDILike, TokenizerConfig as MTConfig

    mt = MIDILike(MTConfig(num_velocities=32, use_sustain_pedals=True))
    t0 = time.perf_counter()
    mt_tokens = 0
    for f in files:
        seqs = mt.encode(f)
        mt_tokens += sum(len(s.ids) for s in (seqs if isinstance(seqs, list) else [seqs]))
    t_mt = time.perf_counter() - t0

    t0 = time.perf_counter()
    pm_tokens = 0
    same = 0
    for i, f in enumerate(files):
        ids = pretty_midi_tokenize(f)
        pm_tokens += len(ids)
    t_pm = time.perf_counter() - t0
    # The baseline implements the same scheme: check it agrees on a few files.
    for f in files[:: max(1, len(files) // 20)]:
        same += int(np.array_equal(np.array(pretty_midi_tokenize(f)), tok.encode(read_midi(f))))

    n = len(files)
    print(f"{n} PiJAMA files, {notes:,} notes, {seconds_music / 3600:.2f} h of music; one process")
    print(f"pretty_midi baseline agrees with TatumFlow on {same}/{len(files[:: max(1, len(files) // 20)])} checked files")
    print()
    print("| tokenizer | seconds | files/s | notes/s | tokens | TatumFlow speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, t, k in (("TatumFlow PerformanceTokenizer", t_tf, tokens),
                       ("miditok MIDILike (sustain, 32 vel)", t_mt, mt_tokens),
                       ("pretty_midi straightforward", t_pm, pm_tokens)):
        print(f"| {name} | {t:.2f} | {n / t:,.0f} | {notes / t:,.0f} | {k:,} | {t / t_tf:.1f}x |")
    print()
    print(f"TatumFlow: {tokens / notes:.3f} tokens per note, {tokens / seconds_music:.2f} tokens per second of music")


if __name__ == "__main__":
    main()
