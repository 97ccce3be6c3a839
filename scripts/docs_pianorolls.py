"""The README's piano rolls (docs/*.png), made with the shipped generators.

    python scripts/docs_pianorolls.py [--out docs] [--seed 0]

1. the default shipped TatumFlow (``control_tatum``), unconditional, 20 s;
2. the same model continuing the first 8 s of that sample for 12 s;
3. the shipped Music RNN continuing the same 8 s for 12 s;
4. the shipped plain transformer (the baseline) continuing them for 12 s.
Deterministic for a seed (what `tatumflow generate` gives with the same options).
"""

import argparse
from pathlib import Path

from tatumflow.models.music_rnn import NotePipeline
from tatumflow.models.tatumflow import GenerationPipeline
from tatumflow.pretrained import PLAIN_BASELINE, default_model, load_model
from tatumflow.render import plot_pianoroll

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tf, rnn = default_model("tatumflow"), default_model("music_rnn")
    pipe = GenerationPipeline(load_model(tf)[0])
    sample = pipe.unconditional(20.0, seed=args.seed).performance
    prompt = sample.slice(0, 8.0)
    cont = pipe.continuation(prompt, 12.0, seed=args.seed).performance
    rnn_cont = NotePipeline(load_model(rnn)[0]).continuation(prompt, 12.0, seed=args.seed)
    plain = PLAIN_BASELINE
    plain_cont = GenerationPipeline(load_model(plain)[0]).continuation(prompt, 12.0, seed=args.seed).performance
    size = dict(width=9.0, height=3.2, dpi=80)
    for name, perf, title in [
            ("pianoroll_unconditional.png", sample, f"{tf}: unconditional, 20 s"),
            ("pianoroll_tatumflow_continuation.png", cont, f"{tf}: continuing the sample's first 8 s"),
            ("pianoroll_music_rnn_continuation.png", rnn_cont, f"{rnn}: continuing the sample's first 8 s"),
            ("pianoroll_transformer_continuation.png", plain_cont, f"{plain}: continuing the sample's first 8 s")]:
        path = plot_pianoroll(perf, args.out / name, title=title, end=20.0, **size)
        print(f"{path}: {len(perf)} notes, {path.stat().st_size / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
