"""TatumFlow's ``generate`` command: its own options and the entry point the CLI
calls (:attr:`tatumflow.models.protocol.Family.generate`)."""

from __future__ import annotations

from pathlib import Path

from ...errors import TatumFlowError
from ...utils import arg_number, arg_path
from .generate import GenerationPipeline, Inputs, Sampling, run_mode, write_results


def add_generate_options(g) -> None:
    """TatumFlow's own ``generate`` options (the CLI adds the shared ones)."""
    g.add_argument("--style", type=arg_path("file"), help="MIDI whose style to use (style-transfer, interpolate, unconditional)")
    g.add_argument("--chords", help='chord progression for edit-harmony, e.g. "Dm7 G7 Cmaj7 Cmaj7"')
    g.add_argument("--strength", type=arg_number(float, low=0, high=1), default=0.6, help="how far to re-noise (style-transfer, edit-harmony)")
    g.add_argument("--creativity", type=arg_number(float, low=0), default=0.5, help="improvise: 0 close to the prompt .. 1 free")
    g.add_argument("--variations", type=arg_number(int, low=1, high=64), default=3, help="improvise: how many")
    g.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="interpolate: style mix values")
    g.add_argument("--top-k", type=arg_number(int, low=1))
    g.add_argument("--top-p", type=arg_number(float, low=0, low_open=True, high=1), default=0.95)
    g.add_argument("--min-p", type=arg_number(float, low=0, high=1, high_open=True))
    g.add_argument("--steps", type=arg_number(int, low=1, high=1000), default=50, help="denoising steps")
    g.add_argument("--sampler", default="ddim", choices=["ddim", "ddpm"])
    g.add_argument("--eta", type=arg_number(float, low=0, high=1), default=0.0, help="DDIM eta (0 deterministic .. 1)")
    g.add_argument("--guidance", type=arg_number(float, low=0), default=2.0, help="classifier-free guidance weight (1 = none)")
    g.add_argument("--no-cache", action="store_true", help="decode without the KV cache (slower; same output)")
    g.add_argument("--max-polyphony", type=arg_number(int, low=1), help="no new note while this many sound")
    g.add_argument("--chord-bias", type=arg_number(float, low=0), default=0.0,
                   help="edit-harmony: nats added to the tones of the chord asked for at each moment (0: the model alone)")
    g.add_argument("--chroma-guidance", type=arg_number(float, low=0),
                   help="a model with a control track: how strongly to follow the plan's chroma (1 as given, 0 ignored, "
                        ">1 more; default: the mode's own)")
    g.add_argument("--texture-guidance", type=arg_number(float, low=0),
                   help="... and its texture (density, register, loudness, voicing size)")
    g.add_argument("--pianist-guidance", type=arg_number(float, low=0),
                   help="... and who plays (a model with the pianist control)")
    g.add_argument("--pianist", help="a model with the pianist control: who plays, one of its pianists or any other "
                                     "name for another pianist (default: its first; interpolate: who plays --prompt)")
    g.add_argument("--style-pianist", help="interpolate, a model with the pianist control: who plays --style "
                                           "(default: another pianist)")
    g.add_argument("--max-note-seconds", type=arg_number(float, low=0, low_open=True), default=Sampling.max_note_seconds,
                   help="release any note held this long (default 8 s, longer than any note in Art Tatum's albums)")


def generate_command(model, opts: dict, *, device="cpu", echo=print) -> list[Path]:
    """``tatumflow generate`` for a TatumFlow checkpoint: every mode, from parsed options."""
    from ...midi import read_midi

    def load(path):
        if path is None:
            return None
        perf = read_midi(path)
        return perf.slice(0, opts["prompt_seconds"]) if opts.get("prompt_seconds") else perf

    try:
        alphas = [float(a) for a in opts["alphas"].split(",")]
    except ValueError:
        raise TatumFlowError(f"--alphas expects comma-separated numbers, got {opts['alphas']!r}") from None
    for a in alphas:
        if not 0.0 <= a <= 1.0:
            raise TatumFlowError(f"--alphas: {a:g} is out of range (must be >= 0 and <= 1)")
    pipe = GenerationPipeline(model, device=device)
    for name in ("chroma_guidance", "texture_guidance"):
        if opts.get(name) is not None and not pipe.controlled:
            raise TatumFlowError(f"--{name.replace('_', '-')} needs a model with a control track "
                                 "(e.g. --model control_tatum); this one has none")
    for name in ("pianist", "style_pianist", "pianist_guidance"):
        if opts.get(name) is not None and not pipe.pianists:
            raise TatumFlowError(f"--{name.replace('_', '-')} needs a model with the pianist control "
                                 "(e.g. --model control_tatum); this one has none")
    if opts.get("pianist") is not None:
        pipe.pianist = opts["pianist"]
    s = Sampling(temperature=opts["temperature"], top_k=opts["top_k"], top_p=opts["top_p"], min_p=opts["min_p"],
                 steps=opts["steps"], sampler=opts["sampler"], eta=opts["eta"], guidance=opts["guidance"],
                 use_cache=not opts["no_cache"], max_polyphony=opts["max_polyphony"],
                 max_note_seconds=opts["max_note_seconds"], chord_bias=opts["chord_bias"],
                 chroma_guidance=opts["chroma_guidance"], texture_guidance=opts["texture_guidance"],
                 pianist_guidance=opts.get("pianist_guidance"))
    mode = opts["mode"] or "continuation"
    inputs = Inputs(prompt=load(opts["prompt"]), style=load(opts["style"]), seconds=opts["seconds"],
                    chords=opts["chords"], strength=opts["strength"], creativity=opts["creativity"],
                    variations=opts["variations"], alphas=alphas, seed=opts["seed"],
                    style_pianist=opts.get("style_pianist"))
    n = opts.get("rerank") or 1
    if n > 1:  # generate-then-judge: N candidates, the scorer's favourite kept
        from dataclasses import replace

        from ...generation.rerank import Scorer, new_part, rerank

        if mode in ("improvise", "interpolate"):
            raise TatumFlowError(f"--rerank applies to modes with one output, not --mode {mode}")
        scorer = opts.get("scorer") or Scorer("style")  # the CLI builds the named one
        prompt = inputs.prompt if mode == "continuation" else None
        results, _ = rerank(lambda sd: run_mode(pipe, mode, replace(inputs, seed=sd), s), n, scorer,
                            seed=opts["seed"], performance=lambda res: new_part(res[0][1].performance, prompt),
                            echo=echo)
    else:
        results = run_mode(pipe, mode, inputs, s)
    files = write_results(results, opts["out"], label=mode, pianoroll=opts.get("pianoroll"))
    for (_, r), (path, _) in zip(results, files):
        echo(f"{path}: {mode}, {len(r.performance)} notes, {r.performance.end:.1f}s, "
             f"{len(r.ids)} tokens, {r.grammar_errors} grammar errors")
    return [p for pair in files for p in pair if p is not None]
