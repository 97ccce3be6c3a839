"""The scorecard's control passes under chosen control-track settings (the val-album
table of README "Control guidance"; tune on the val split, never on test).

    python benchmarks/control_guidance.py [--model control_tatum] [--modes style,edit,interp,improv] \\
        [--chroma W] [--texture W] [--pianist-guidance W] [--style-release R] [--style-pianist K] \\
        [--chord-weights 1.5,1.5,0.85,1.25] \\
        [--seed 0] [--same-pianist] [--interp-hold K] [--data ../shared/data/pijama/index.csv] \\
        [--split val] [--out DIR]

``--chroma`` / ``--texture``: the guidance every mode uses (default: each mode's own,
``generate.CONTROL_GUIDANCE``; ``--pianist-guidance``: on who plays, a model with the
pianist control); ``--style-release``: how far style transfer lets go
of the content's chroma at strength 1 (``generate.STYLE_RELEASE``); ``--style-pianist``:
its pianist guidance ``1 + K * strength`` (``generate.STYLE_PIANIST``);
``--chord-weights``: a requested chord's root, seventh, fifth and (optional) third
weights in its chroma (``controls.ROOT_WEIGHT``, ``SEVENTH_WEIGHT``, ``FIFTH_WEIGHT``,
``THIRD_WEIGHT``); ``--chord-bias``: edit-harmony's chord-tone bias in nats (default
none); ``--seed``: the passes' base seed (the card's is 0; other seeds show how far
a number moves by chance); ``--same-pianist``: interpolate between two of the album's
own pieces (a control: P(target) should not fall with alpha); ``--interp-hold K``:
interpolation's chroma and texture guidance ``1 + K * alpha`` (a variant tried and not
kept: README "Control guidance"). Runs the full card's style-transfer, edit-harmony,
interpolation and improvise passes on the album's slices (and the other pianists'
pieces of the same split as contrast) and prints their numbers and targets.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

import tatumflow.models.tatumflow.controls as controls
import tatumflow.models.tatumflow.generate as generate
from tatumflow import scorecard as S
from tatumflow.evaluation.style import DEFAULT_JUDGE, StyleJudge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="control_tatum")
    ap.add_argument("--modes", default="style,edit,interp,improv")
    ap.add_argument("--chroma", type=float)
    ap.add_argument("--texture", type=float)
    ap.add_argument("--pianist-guidance", type=float)
    ap.add_argument("--style-release", type=float)
    ap.add_argument("--style-pianist", type=float)
    ap.add_argument("--chord-weights", help="root,seventh,fifth[,third]")
    ap.add_argument("--chord-bias", type=float, default=0.0, help="edit-harmony's chord-tone bias (nats)")
    ap.add_argument("--seed", type=int, default=0, help="the passes' base seed (the card's: 0)")
    ap.add_argument("--same-pianist", action="store_true",
                    help="interpolate between two of the target pianist's pieces (a control)")
    ap.add_argument("--interp-hold", type=float, help="interpolation guidance 1 + K * alpha on both parts")
    ap.add_argument("--data", default="../shared/data/pijama/index.csv")
    ap.add_argument("--pianist", default="Art Tatum")
    ap.add_argument("--split", default="val")
    ap.add_argument("--out", type=Path, help="where the outputs go (default: a temporary folder)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.style_release is not None:
        generate.STYLE_RELEASE = args.style_release
    if args.style_pianist is not None:
        generate.STYLE_PIANIST = args.style_pianist
    if args.chord_weights:
        w = [float(x) for x in args.chord_weights.split(",")]
        controls.ROOT_WEIGHT, controls.SEVENTH_WEIGHT, controls.FIFTH_WEIGHT = w[:3]
        if len(w) > 3:
            controls.THIRD_WEIGHT = w[3]
    modes = set(args.modes.split(","))

    t0 = time.perf_counter()
    b = S.FULL
    d = S.load_data(args.data, {"pianist": args.pianist, "split": args.split},
                    contrast_where={"split": args.split}, pieces=b.pieces)
    model, fam, _ = S._model_info(args.model)
    pipe = fam.pipeline(model)
    pipe.sampling = replace(pipe.sampling, chroma_guidance=args.chroma, texture_guidance=args.texture,
                            pianist_guidance=args.pianist_guidance)
    contents = S._slices(d.contrast, b.seconds, b.contents)
    styles = S._slices(d.target, S.NEXT_SECONDS, b.contents)
    if args.interp_hold is not None:  # each alpha its own guidance: one interpolate call per alpha
        k, interpolate = args.interp_hold, pipe.interpolate

        def held(a, other, alphas, seconds, *, seed=0, sampling=None):
            return [interpolate(a, other, [al], seconds, seed=seed, sampling=replace(
                pipe.sampling, chroma_guidance=1.0 + k * al, texture_guidance=1.0 + k * al))[0] for al in alphas]
        pipe.interpolate = held
    with tempfile.TemporaryDirectory() as tmp:
        card = S._Card(StyleJudge.load(DEFAULT_JUDGE), args.out or Path(tmp), print)
        r = {}
        if "style" in modes:
            r["style_transfer"] = S.score_style_transfer(pipe, contents, styles, card, seed=args.seed)
        if "edit" in modes:
            r["edit_harmony"] = S.score_edit_harmony(pipe, S._slices(d.target, b.seconds, b.harmony_prompts), card,
                                                     chord_bias=args.chord_bias, seed=args.seed)
        if "interp" in modes:
            others = S._slices(d.target, S.NEXT_SECONDS, b.pairs + 1)[1:] if args.same_pianist else contents
            r["interpolate"] = S.score_interpolate(pipe, list(zip(styles, others))[: b.pairs], b.seconds, card,
                                                   seed=args.seed)
        if "improv" in modes:
            r["improvise"] = S.score_improvise(pipe, S._slices(d.target, b.seconds, b.improv_prompts), b.variations,
                                               card, seed=args.seed)
    for t in S.check_targets(r):
        if t["met"] is not None:
            print(f"{t['key']:40s} {t['target']:>8s}  {json.dumps(t['value'])[:8]:>8s}  {'yes' if t['met'] else 'no'}")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
