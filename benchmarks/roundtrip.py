"""Round-trip error of the performance tokenizer over every file of a dataset.

    python benchmarks/roundtrip.py [--data ../shared/data] [--release note_off|duration]

Prints, per dataset: files, notes, worst onset/offset/pedal error, and the
notes the 10 ms grid cannot hold exactly (shorter than a step, or two strikes
of one key inside one step).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from tatumflow import PerformanceTokenizer, TokenizerConfig, read_midi
from tatumflow.tokenizer.roundtrip import roundtrip_report


def dataset_files(data: Path) -> dict[str, list[Path]]:
    out = {}
    idx = data / "pijama" / "index.csv"
    if idx.exists():
        out["PiJAMA"] = [idx.parent / r["path"] for r in csv.DictReader(open(idx, encoding="utf-8"))]
    pp = data / "percepiano" / "midi"
    if pp.exists():
        out["PercePiano"] = sorted(pp.glob("*.mid"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--release", choices=("note_off", "duration"), default="note_off")
    args = ap.parse_args()
    tok = PerformanceTokenizer(TokenizerConfig(release=args.release))
    print(f"tokenizer release={args.release}, time step {tok.config.time_step_ms} ms")
    hdr = ("dataset", "files", "notes", "not ok", "max onset ms", "max offset ms", "max pedal ms",
           "pedal presses", "short notes", "merged restrikes", "short pedals", "max short-note offset ms", "s")
    print(" | ".join(hdr))
    print(" | ".join("---" for _ in hdr))
    for name, files in dataset_files(args.data).items():
        t0 = time.perf_counter()
        agg = dict(notes=0, bad=0, on=0.0, off=0.0, ped=0.0, presses=0, short=0, merged=0, sped=0, soff=0.0)
        for f in files:
            r = roundtrip_report(read_midi(f), tok)
            agg["notes"] += r.notes_in
            agg["bad"] += not r.ok
            agg["on"] = max(agg["on"], r.max_onset_error)
            agg["off"] = max(agg["off"], r.max_offset_error)
            agg["ped"] = max(agg["ped"], r.max_pedal_error)
            agg["presses"] += r.pedal_intervals_in
            agg["short"] += r.short_notes
            agg["merged"] += r.merged_restrikes
            agg["sped"] += r.short_pedals
            agg["soff"] = max(agg["soff"], r.max_short_offset_error)
        print(" | ".join(map(str, (
            name, len(files), f"{agg['notes']:,}", agg["bad"], f"{1e3 * agg['on']:.3f}", f"{1e3 * agg['off']:.3f}",
            f"{1e3 * agg['ped']:.3f}", agg["presses"], agg["short"], agg["merged"], agg["sped"],
            f"{1e3 * agg['soff']:.2f}", f"{time.perf_counter() - t0:.1f}"))))


if __name__ == "__main__":
    main()
