"""Fuzz the symbolic pipeline with mutated MIDI files.

Each input is a seed file with 1-3 seeded byte mutations (bit flips, random
and special bytes, inserted/deleted/duplicated ranges, truncation, huge delta
times, edited header and chunk-length fields). It goes through
reader -> validate -> tokenize -> decode -> features -> assess, and must either
be read correctly or be rejected with the project's own error
(:class:`~tatumflow.errors.TatumFlowError`); anything else is a failure.

"Read correctly" is checked, not assumed: every accepted file must give finite
times with 0 <= onset <= offset <= 24 h, pitches 0..127 and velocities 1..127;
a strict independent parser (mido) must accept it too; and every note it
sees (a note-on closed by its note-off) must be a note of the Performance
(silent truncation shows up here).

    python scripts/fuzz_pipeline.py --n 100000 --seed 0 [--files a.mid b.mid ...] [--json]

The seeds are built in (synthetic performances, a hand-built file with running
status, sysex, text meta events and tempo changes, an SMPTE-timed file), plus
any ``--files`` given. ``tests/midi/test_fuzz.py`` runs 2,000 inputs.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np


def builtin_seeds(workdir: Path) -> list[bytes]:
    """Seed files the package can always make: bytes of three real-world shapes."""
    from tatumflow.midi import write_midi
    from tatumflow.performance import Performance, make_notes, make_pedals

    rng = np.random.default_rng(1234)
    seeds = []
    for n, pedal in ((60, True), (25, False)):
        on = np.sort(rng.uniform(0, 12, n))
        notes = make_notes(on, on + rng.exponential(0.3, n) + 0.02, rng.integers(21, 109, n),
                           rng.integers(1, 128, n))
        t = np.arange(0.2, 12, 1.1)
        p = workdir / f"seed{n}.mid"
        if pedal:
            write_midi(Performance(notes, make_pedals(t, np.where(np.arange(len(t)) % 2 == 0, 100, 0))), p)
        else:
            write_midi(Performance(notes), p)
        seeds.append(p.read_bytes())

    def vlq(v):
        out = [v & 0x7F]
        v >>= 7
        while v:
            out.append(0x80 | (v & 0x7F))
            v >>= 7
        return bytes(reversed(out))

    def chunk(events):
        body = b"".join(vlq(d) + e for d, e in events) + b"\x00\xff\x2f\x00"
        return b"MTrk" + len(body).to_bytes(4, "big") + body

    meta = [(0, b"\xff\x03\x05Piano"), (0, b"\xff\x51\x03\x07\xa1\x20"), (0, b"\xf0\x05\x7e\x7f\x09\x01\xf7"),
            (960, b"\xff\x51\x03\x06\x1a\x80"), (0, b"\xff\x58\x04\x04\x02\x18\x08")]
    ev = [(0, b"\xc0\x00"), (0, b"\xb0\x40\x7f")]
    for i, p in enumerate((60, 64, 67, 72, 71, 69, 67, 65, 64, 62, 60)):
        ev += [(120, bytes([0x90, p, 40 + 7 * i])), (100, bytes([p, 0]))]  # running status note-offs
        if i % 4 == 3:
            ev += [(0, b"\xb0\x40\x00"), (10, b"\x40\x7f")]
    hdr = lambda fmt, n, div: b"MThd\x00\x00\x00\x06" + bytes([0, fmt, 0, n]) + div.to_bytes(2, "big")
    seeds.append(hdr(1, 2, 480) + chunk(meta) + chunk(ev))
    seeds.append(hdr(0, 1, ((256 - 25) << 8) | 40) + chunk(ev))
    return seeds


SPECIAL = bytes([0x00, 0x7F, 0x80, 0x8F, 0x90, 0xB0, 0xF0, 0xF7, 0xFF, 0x2F, 0x51])


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """1-3 random byte-level mutations of ``data``."""
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        n = len(b)
        if n == 0:
            break
        op = int(rng.integers(0, 10))
        i = int(rng.integers(0, n))
        if op == 0:
            b[i] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:
            b[i] = int(rng.integers(0, 256))
        elif op == 2:
            b[i] = SPECIAL[int(rng.integers(0, len(SPECIAL)))]
        elif op == 3:
            b[i:i] = rng.integers(0, 256, int(rng.integers(1, 9))).astype(np.uint8).tobytes()
        elif op == 4:
            del b[i:i + int(rng.integers(1, 17))]
        elif op == 5:
            del b[int(rng.integers(0, n)):]
        elif op == 6:
            j = min(n, i + int(rng.integers(1, 33)))
            b[j:j] = b[i:j]
        elif op == 7:  # a huge delta time where a one-byte delta may have been
            b[i:i + 1] = b"\x8f\xff\xff\x7f"
        elif op == 8 and n >= 14:  # a header field: format, track count or division
            k = int(rng.choice([9, 11, 12, 13]))
            b[k] = int(rng.integers(0, 256))
        elif op == 9:  # a chunk length field
            pos = b.find(b"MTrk", int(rng.integers(0, n)))
            pos = pos if pos >= 0 else b.find(b"MTrk")
            if pos >= 0 and pos + 8 <= n:
                b[pos + 4:pos + 8] = int(rng.integers(0, 2**32)).to_bytes(4, "big")
    return bytes(b)


def _strict_notes(data: bytes) -> int:
    """Notes a strict parser (mido) reads: note-ons (velocity > 0) closed by a note-off
    (or a velocity-0 note-on) of the same track, channel and pitch, oldest first.
    A note-on never closed is not a note. Raises if mido cannot parse the bytes."""
    import mido

    mf = mido.MidiFile(file=io.BytesIO(data), clip=False)
    closed = 0
    for tr in mf.tracks:
        open_: Counter = Counter()
        for m in tr:
            if m.type == "note_on" and m.velocity > 0:
                open_[m.channel, m.note] += 1
            elif m.type in ("note_off", "note_on") and open_[m.channel, m.note] > 0:
                open_[m.channel, m.note] -= 1
                closed += 1
    return closed


class Pipeline:
    """The stages an input goes through; each must finish or raise TatumFlowError."""

    def __init__(self):
        from tatumflow.assessment.shipped import ForestAssessor
        from tatumflow.tokenizer import PerformanceTokenizer

        self.tok = PerformanceTokenizer()
        self.assessor = ForestAssessor.load()

    def run(self, path: Path, data: bytes) -> str:
        """The outcome's name: ``"rejected: <kind>"``, ``"ok"``, or raises on a defect."""
        from tatumflow.errors import MidiReadError
        from tatumflow.midi import read_midi
        from tatumflow.midi.validate import ValidationConfig, check_performance, reason_kind

        try:
            perf = read_midi(path, include_drums=True)
        except MidiReadError as exc:
            return f"rejected: {reason_kind(exc.reason)}"
        n = perf.notes
        times = np.concatenate([n["onset"], n["offset"], perf.pedals["time"]])
        if len(times) and not (np.isfinite(times).all() and times.min() >= 0 and times.max() <= 24 * 3600):
            raise AssertionError(f"accepted with bad times {times.min()}..{times.max()}")
        if len(n) and ((n["offset"] < n["onset"]).any() or n["velocity"].min() < 1 or n["pitch"].max() > 127):
            raise AssertionError("accepted with bad notes")
        tag = ""
        try:
            strict = _strict_notes(data)
        except Exception as exc:
            frames = {f.name for f in traceback.extract_tb(exc.__traceback__)}
            if frames & {"read_sysex", "read_meta_message"}:
                # mido also checks what meta and sysex events say (key signatures, F7 escapes),
                # which the reader rightly skips: not a note of the file is at stake.
                strict, tag = len(n), " (mido refuses its meta/sysex content)"
            else:
                raise AssertionError(f"accepted, but a strict parser rejects it: {type(exc).__name__}: {exc}")
        if strict != len(n):
            raise AssertionError(f"accepted with {len(n)} notes, a strict parser sees {strict}")
        reason = check_performance(perf, ValidationConfig(min_seconds=0.0, min_notes=1, allowed_programs=None))
        ids = self.tok.encode(perf)
        self.tok.decode(ids, return_report=True)
        if not reason:
            from tatumflow.assessment.features import performance_features
            from tatumflow.assessment.shipped import MIN_NOTES_TO_RATE

            # features of any valid input; ratings (features and note rows) from 8 notes on
            out = self.assessor.assess([perf]) if len(perf) >= MIN_NOTES_TO_RATE else performance_features([perf])[0]
            if not np.isfinite(out).all():
                raise AssertionError("non-finite ratings" if len(perf) >= MIN_NOTES_TO_RATE else "non-finite features")
        return ("ok" if not reason else f"read, invalid: {reason_kind(reason)}") + tag


def fuzz(n: int, seed: int = 0, files: tuple = (), *, progress: bool = False) -> dict:
    """Run ``n`` mutated inputs; return counts of outcomes and the defects found (with a repro seed)."""
    rng = np.random.default_rng(seed)
    pipe = Pipeline()
    outcomes, defects = Counter(), []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seeds = builtin_seeds(work) + [Path(f).read_bytes() for f in files]
        path = work / "input.mid"
        for k in range(n):
            s = int(rng.integers(0, len(seeds)))
            data = mutate(seeds[s], rng)
            path.write_bytes(data)
            try:
                outcomes[pipe.run(path, data)] += 1
            except Exception as exc:
                from tatumflow.errors import TatumFlowError

                if isinstance(exc, TatumFlowError):  # a stage after the reader refused with a reason
                    outcomes[f"refused: {type(exc).__name__}"] += 1
                    continue
                outcomes["DEFECT"] += 1
                if len(defects) < 20:
                    defects.append({"input": k, "seed_file": s, "error": f"{type(exc).__name__}: {exc}",
                                    "where": traceback.format_exc().strip().splitlines()[-3].strip()})
            if progress and (k + 1) % 1000 == 0:
                print(f"  {k + 1}/{n} inputs, {outcomes['DEFECT']} defects", file=sys.stderr)
    return {"inputs": n, "seed": seed, "seed_files": len(seeds), "seconds": round(time.perf_counter() - t0, 1),
            "outcomes": dict(outcomes.most_common()), "defects": defects}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="mutated inputs (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--files", nargs="*", default=[], help="more seed MIDI files (e.g. a few PiJAMA pieces)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.n < 1:
        ap.error(f"--n must be >= 1, got {a.n}")
    r = fuzz(a.n, a.seed, tuple(a.files), progress=not a.json)
    if a.json:
        print(json.dumps(r, indent=1))
    else:
        print(f"{r['inputs']} inputs from {r['seed_files']} seed files in {r['seconds']}s "
              f"({r['inputs'] / max(r['seconds'], 1e-9):.0f}/s)")
        for k, v in r["outcomes"].items():
            print(f"  {v:7d}  {k}")
        for d in r["defects"]:
            print(f"DEFECT input {d['input']}: {d['error']} at {d['where']}")
    return 1 if r["defects"] else 0


if __name__ == "__main__":
    sys.exit(main())
