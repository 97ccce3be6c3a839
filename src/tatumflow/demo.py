"""The main job on the built-in corpus: what `tatumflow demo` (and `make demo`) runs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from .data import TokenStore, prepare_store, store_statistics
from .midi import write_midi
from .render import plot_pianoroll

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "music_rnn_demo.yaml"
TATUMFLOW_DEMO_CONFIG = DEMO_CONFIG.with_name("tatumflow_demo.yaml")


def run_demo(out: "str | os.PathLike" = "out/demo", *, corpus: str = "chorales",
             workers: int | None = None, train_seconds: float = 30.0, tatumflow_seconds: float = 60.0,
             melody_seconds: float = 45.0, echo: Callable[[str], None] = print) -> dict:
    """Build the corpus, prepare a token store, print its statistics, draw a piece;
    show the training path (a small Music RNN for ``train_seconds`` and a tiny
    TatumFlow for ``tatumflow_seconds`` on the store; 0 skips either); then make
    music with the models shipped in the package: every TatumFlow mode and a Music
    RNN continuation, each with its piano roll; last a MelodyVAE trained for
    ``melody_seconds`` (0 skips it) and the shipped one's interpolation and bent melody.

    Returns the paths written and the store statistics.
    """
    from .models.registry import FAMILIES
    from .pretrained import PLAIN_BASELINE, SHIPPED, default_model, load_model
    from .training.run import train_from_config

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    echo(f"[1/7] preparing a token store from the built-in corpus {corpus!r}")
    res = prepare_store(corpus, out / "store", workers=workers)
    store = TokenStore(res.store)
    stats = store_statistics(store)
    echo(f"      {stats['files']} files ({stats['failed']} failed), {stats['hours']:.2f} h, "
         f"{stats['notes']:,} notes, {stats['tokens']:,} tokens, "
         f"{stats['tokens_per_note']:.2f} tokens/note, {stats['tokens_per_second']:.1f} tokens/s, "
         f"vocabulary used {stats['vocab_used']}/{stats['vocab_size']}")
    echo("[2/7] decoding one stored piece back to MIDI")
    tok = store.tokenizer()
    i = int(store.indices("test")[0]) if len(store.indices("test")) else 0
    perf = tok.decode(store.tokens(i), metadata={"source": store.files[i]["key"]})
    midi_path = write_midi(perf, out / "decoded.mid")
    plot_pianoroll(perf, out / "pianoroll.png", title=f"{store.files[i]['key']} (decoded from tokens)")
    echo(f"      {midi_path}, {out / 'pianoroll.png'}")
    result = {"store": str(res.store), "midi": str(midi_path), "pianoroll": str(out / "pianoroll.png"),
              "stats": stats}
    for step, (seconds, config, name) in enumerate([(train_seconds, DEMO_CONFIG, "music_rnn"),
                                                    (tatumflow_seconds, TATUMFLOW_DEMO_CONFIG, "tatumflow")], 3):
        if seconds <= 0:
            continue
        if not config.exists():
            raise FileNotFoundError(f"{config}: the demo preset ships with the repository checkout")
        echo(f"[{step}/7] the training path: {name} ({config.name}) on the store for about {seconds:g}s")
        s = train_from_config(config, families=FAMILIES, data=res.store, out=out / "train" / name,
                              overrides=[f"train.max_seconds={seconds}"])
        echo(f"      {s['steps']} steps, {s['params']:,} parameters: "
             + ", ".join(f"{k} {v:.3g}" for k, v in s["val"].items() if k.endswith(("bits_per_note", "bits_per_token"))))
        result[f"train_{name}"] = s
    tf_name, rnn_name = default_model("tatumflow"), default_model("music_rnn")
    echo(f"[5/7] the shipped TatumFlow ({tf_name}): an unconditional sample, then every mode "
         f"(the {store.files[i]['key']} piece as the prompt, the sample as the other style)")
    result["tatumflow"] = tatumflow_demo(load_model(tf_name)[0], out / "tatumflow", perf.slice(0, 8.0), echo)
    sample = result["tatumflow"]["sample"]
    echo(f"[6/7] the shipped Music RNN ({rnn_name}) continues the TatumFlow sample for 20 s")
    from .models.music_rnn import generate_from_prompt

    gen = generate_from_prompt(load_model(rnn_name)[0], sample, 20.0, out / "music_rnn.mid", seed=0)
    plot_pianoroll(gen["performance"], out / "music_rnn.png",
                   title=f"TatumFlow sample ({sample.end:.0f} s) + Music RNN continuation (20 s)")
    echo(f"      {out / 'music_rnn.mid'}, {out / 'music_rnn.png'} "
         f"({gen['notes']} notes, realtime factor {gen['realtime_factor']:.0f}x)")
    result["generated"] = str(out / "music_rnn.mid")
    plain = PLAIN_BASELINE
    if (SHIPPED / plain / "state.json").exists():  # the shipped plain transformer: the baseline
        from .models.tatumflow import GenerationPipeline

        cont = GenerationPipeline(load_model(plain)[0]).continuation(sample, 20.0, seed=0)
        write_midi(cont.performance, out / "transformer.mid")
        plot_pianoroll(cont.performance, out / "transformer.png",
                       title=f"TatumFlow sample ({sample.end:.0f} s) + {plain} continuation (20 s)")
        echo(f"      and the shipped baseline, the plain transformer {plain}, continues it: "
             f"{out / 'transformer.mid'}, {out / 'transformer.png'} "
             f"({len(cont.performance)} notes, {cont.grammar_errors} grammar errors)")
        result["transformer"] = str(out / "transformer.mid")
    result["melody"] = melody_demo(corpus, out / "melody", melody_seconds, echo)
    echo(f"done in {time.perf_counter() - t0:.1f}s")
    return result


def tatumflow_demo(model, out: Path, piece, echo: Callable[[str], None] = print) -> dict:
    """Step 5: with ``model``, a 12 s unconditional sample (the other style), then one
    output of every mode with ``piece`` as the prompt / content."""
    from .models.tatumflow import GenerationPipeline, Sampling
    from .models.tatumflow.generate import write_every_mode

    pipe = GenerationPipeline(model, device="cpu")
    sampling = Sampling(steps=50, max_polyphony=8, max_note_seconds=4.0)
    sample = pipe.unconditional(12.0, seed=0, sampling=sampling).performance
    written = write_every_mode(pipe, piece, sample, out, seconds=12.0, seed=0, sampling=sampling, echo=echo)
    return {"sample": sample, "outputs": {m: [str(p) for p, _, _ in w] for m, w in written.items()},
            "grammar_errors": sum(r.grammar_errors for w in written.values() for _, r, _ in w)}


def melody_demo(corpus: str, out: Path, seconds: float, echo: Callable[[str], None] = print) -> dict:
    """Step 7: the training path, a MelodyVAE trained on the corpus's top voices for
    about ``seconds`` (0 skips it); then the shipped 2-D MelodyVAE interpolates between
    two of those melodies and writes a bent variation of the first."""
    from .corpus.sources import resolve_source
    from .midi import read_midi
    from .models.melody_vae import MelodyVAEConfig, load_melodies
    from .pretrained import load_model
    from .server.melody import DEFAULT_MODEL, MelodySession, train_melody

    result: dict = {}
    if seconds > 0:
        echo(f"[7/7] the training path: a MelodyVAE (2-D pad) on the top voices of {corpus!r} for about {seconds:g}s")
        _, s = train_melody(corpus, out / "model", epochs=1000, voice="top", max_seconds=seconds, progress=False)
        best = min(s["history"], key=lambda r: r.get("val/elbo", float("inf"))) if s["history"] else {}
        echo(f"      {s['epochs']:.1f} epochs on {s['train_windows']:,} windows; the best: val onset accuracy "
             f"{best.get('val/onset_accuracy', float('nan')):.3f}, pitch accuracy "
             f"{best.get('val/pitch_accuracy', float('nan')):.3f} ({out / 'model'})")
        result["train"] = s
    shipped = (f"the shipped MelodyVAE ({DEFAULT_MODEL}): an interpolation between two melodies of {corpus!r} "
               f"(top voices) and a bent variation of the first")
    echo(f"      {shipped}" if seconds > 0 else f"[7/7] {shipped}")
    w, _ = load_melodies(corpus, MelodyVAEConfig(), voice="top")
    a, b = sorted(set(w.source))[:2]
    files = {f.key: f.path for f in resolve_source(corpus, progress=False)[1]}
    session = MelodySession(load_model(DEFAULT_MODEL)[0], workdir=out)
    written = {}
    written["interpolation"] = session.interpolate(str(files[a]), str(files[b]), 5, out=str(out / "interpolation.mid"))
    z = session.encode(str(files[a]))
    written["unbent"] = session.generate(z, out=str(out / "unbent.mid"))
    session.bend(0.5, seed=0)
    written["bent"] = session.generate(z, out=str(out / "bent.mid"))
    session.reset()
    for name, (path, perf) in written.items():
        plot_pianoroll(perf, path.with_suffix(".png"), title=f"MelodyVAE {name}")
        echo(f"      {path}: {len(perf)} notes ({read_midi(path).end:.1f}s), {path.with_suffix('.png')}")
    result.update({k: str(v[0]) for k, v in written.items()})
    return result

