"""Live call-and-response timing on stand-in ports (no MIDI system needed).

    python benchmarks/live_latency.py [--model CKPT] [--phrases 8] [--silence 0.4]

A simulated player plays phrases (8 notes each, a pause between) into a
`LiveSession` in real time; a stand-in output port timestamps every message.
Prints, per model: the latency from the detected end of each phrase to the
first answered note, and the timing error of every sent message (sent - due),
while the answer is being generated ahead of the clock.
Goals (issue 17): first note <= 150 ms after the phrase ends with the Music RNN;
timing error p99 <= 10 ms.

A second table is `tatumflow generate --live` for each Music RNN: a 20 s
continuation played on a stand-in port while it is generated (goal, issue 14:
lateness p99 <= 10 ms at >= 10x real-time generation).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tatumflow.pretrained import load_model
from tatumflow.server.live import LiveSession, Message, StandInPort

REPO = Path(__file__).resolve().parents[1]


def bench(model_ref: str, phrases: int, silence: float, answer: float) -> dict:
    import torch

    torch.set_num_threads(1)
    model, state = load_model(model_ref)
    out = StandInPort()
    s = LiveSession(model.eval(), out, silence=silence, answer_seconds=answer)
    rng = np.random.default_rng(0)
    for k in range(phrases):
        t0 = time.perf_counter()
        steps = rng.choice([0.125, 0.25, 0.25, 0.5], 8)
        on = np.concatenate([[0], np.cumsum(steps[:-1])])
        events = sorted([(t0 + o, Message("note_on", int(p), 90)) for o, p in zip(on, 60 + rng.integers(-7, 8, 8))]
                        + [(t0 + o + 0.9 * d, Message("note_off", int(p), 0))
                           for o, d, p in zip(on, steps, 60 + rng.integers(-7, 8, 8))], key=lambda e: e[0])
        # note-offs above use other pitches on purpose: stray releases must be ignored
        held = []
        for t, m in events:
            while time.perf_counter() < t:
                s.tick()
                time.sleep(0.001)
            s.on_message(m)
            if m.type == "note_on":
                held.append(m.note)
        for p in held:
            s.on_message(Message("note_off", p, 0))
        t_end = time.perf_counter() + silence + answer + 0.3
        while time.perf_counter() < t_end:
            s.tick()
            time.sleep(0.001)
    s.close()
    st = s.stats()
    return {"model": f"{Path(model_ref).name} ({state['family']})", **st}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="checkpoints (default: the test fixtures' Music RNN and TatumFlow)")
    ap.add_argument("--phrases", type=int, default=8)
    ap.add_argument("--silence", type=float, default=0.4)
    ap.add_argument("--answer", type=float, default=2.0)
    a = ap.parse_args()
    models = a.model or [str(REPO / "tests" / "fixtures" / "music_rnn_v1"), str(REPO / "tests" / "fixtures" / "tatumflow_v1")]
    print("| model | answers | latency ms (median / max) | messages | timing error ms p50 / p99 / max |")
    print("|---|---:|---:|---:|---:|")
    for m in models:
        r = bench(m, a.phrases, a.silence, a.answer)
        lat = r["latency_ms"]
        j = r["jitter_ms"]
        print(f"| {r['model']} | {r['answers']} | {np.median(lat):.1f} / {max(lat):.1f} | {r['messages']} | "
              f"{j['p50']:.2f} / {j['p99']:.2f} / {j['max']:.2f} |")
    print("\n`generate --live`, 20 s on a stand-in port:\n")
    print("| model | notes | generation x real time | lateness ms p50 / p99 / max |\n|---|---:|---:|---:|")
    for m in models:
        if load_model(m)[1]["family"] == "music_rnn":
            g = bench_generate(m, 20.0)
            print(f"| {g['model']} | {g['notes']} | {g['realtime']:.0f} | {g['p50']:.2f} / {g['p99']:.2f} / "
                  f"{g['max']:.2f} |")


def bench_generate(model_ref: str, seconds: float) -> dict:
    import tempfile

    from tatumflow import Performance
    from tatumflow.midi.playback import StandInPort
    from tatumflow.models.music_rnn import generate_from_prompt

    model, state = load_model(model_ref)
    prompt = Performance.from_arrays([0.0, 0.5, 1.0, 1.5], [0.4, 0.9, 1.4, 1.9], [60, 64, 67, 72], [80] * 4)
    with tempfile.TemporaryDirectory() as tmp:
        r = generate_from_prompt(model.eval(), prompt, seconds, Path(tmp) / "x.mid", live=True, port=StandInPort())
    late = r["lateness_ms"]
    return {"model": f"{Path(model_ref).name} ({state['family']})", "notes": r["notes"],
            "realtime": r["realtime_factor"], "p50": float(np.percentile(late, 50)),
            "p99": float(np.percentile(late, 99)), "max": float(late.max())}


if __name__ == "__main__":
    main()
