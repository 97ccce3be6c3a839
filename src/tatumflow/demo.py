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
             workers: int | None = None, train_seconds: float = 60.0, tatumflow_seconds: float = 180.0,
             melody_seconds: float = 45.0, echo: Callable[[str], None] = print) -> dict:
    """Build the corpus, prepare a token store, print its statistics, draw a piece,
    train a small Music RNN for ``train_seconds`` and continue the piece with it,
    then train a tiny TatumFlow for ``tatumflow_seconds`` and write one output of
    every generation mode with it (0 skips either model).

    Returns the paths written and the store statistics.
    """
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
    if train_seconds > 0:
        from .models.music_rnn import generate_from_prompt
        from .models.registry import FAMILIES
        from .pretrained import load_model
        from .training.run import train_from_config

        if not DEMO_CONFIG.exists():
            raise FileNotFoundError(f"{DEMO_CONFIG}: the demo preset ships with the repository checkout")
        echo(f"[3/7] training the Music RNN (option C) for about {train_seconds:g}s")
        s = train_from_config(DEMO_CONFIG, families=FAMILIES, data=res.store, out=out / "music_rnn",
                              overrides=[f"train.max_seconds={train_seconds}"])
        val = s["val"]
        echo(f"      {s['steps']} steps, {s['params']:,} parameters: val pitch accuracy "
             f"{val['val/pitch_accuracy']:.3f}, val bits/note {val['val/bits_per_note']:.2f}")
        echo("[4/7] continuing the first 8 s of that piece for 20 s")
        model, _ = load_model(s["checkpoint"])
        gen = generate_from_prompt(model, perf.slice(0, 8.0), 20.0, out / "generated.mid", seed=0)
        plot_pianoroll(gen["performance"], out / "generated.png", title="prompt (8 s) + Music RNN continuation (20 s)")
        echo(f"      {out / 'generated.mid'}, {out / 'generated.png'} "
             f"({gen['notes']} notes, realtime factor {gen['realtime_factor']:.0f}x)")
        result.update(generated=str(out / "generated.mid"), train=s)
    if tatumflow_seconds > 0:
        result["tatumflow"] = tatumflow_demo(store, out / "tatumflow", perf, tatumflow_seconds, echo)
    if melody_seconds > 0:
        result["melody"] = melody_demo(corpus, out / "melody", melody_seconds, echo)
    echo(f"done in {time.perf_counter() - t0:.1f}s")
    return result


def tatumflow_demo(store: TokenStore, out: Path, piece, seconds: float, echo: Callable[[str], None] = print) -> dict:
    """Steps 5 and 6 of the demo: train the tiny TatumFlow on the store, then
    write one output of every mode (``piece`` is the prompt, a second stored
    piece the other style)."""
    from .models.registry import FAMILIES
    from .models.tatumflow import GenerationPipeline, Sampling
    from .models.tatumflow.generate import write_every_mode
    from .pretrained import load_model
    from .training.run import train_from_config

    if not TATUMFLOW_DEMO_CONFIG.exists():
        raise FileNotFoundError(f"{TATUMFLOW_DEMO_CONFIG}: the demo preset ships with the repository checkout")
    echo(f"[5/7] training a tiny TatumFlow for about {seconds:g}s")
    s = train_from_config(TATUMFLOW_DEMO_CONFIG, families=FAMILIES, data=store.path, out=out / "model",
                          overrides=[f"train.max_seconds={seconds}"])
    val = s["val"]
    echo(f"      {s['steps']} steps, {s['params']:,} parameters: val recon {val['val/recon']:.3f} nats/token "
         f"({val['val/bits_per_token']:.2f} bits/token), val diffusion {val['val/diffusion']:.3f}")
    echo("[6/7] one output of every generation mode (8 s prompts; DDIM-50, at most 8 notes at once, "
         "none held over 4 s)")
    pipe = GenerationPipeline(load_model(s["checkpoint"])[0], device="cpu")
    tok = store.tokenizer()
    idx = store.indices("test")
    j = int(idx[1]) if len(idx) > 1 else int(store.indices(None)[-1])
    other = tok.decode(store.tokens(j))
    written = write_every_mode(pipe, piece.slice(0, 8.0), other.slice(0, 8.0), out, seconds=12.0, seed=0,
                               sampling=Sampling(steps=50, max_polyphony=8, max_note_seconds=4.0), echo=echo)
    return {"train": s, "outputs": {m: [str(p) for p, _, _ in w] for m, w in written.items()},
            "grammar_errors": sum(r.grammar_errors for w in written.values() for _, r, _ in w)}


def melody_demo(corpus: str, out: Path, seconds: float, echo: Callable[[str], None] = print) -> dict:
    """Step 7: a MelodyVAE trained on the corpus's top voices for about ``seconds``,
    an interpolation between two of its melodies and a bent variation."""
    from .midi import read_midi
    from .models.melody_vae import MelodyVAEConfig, load_melodies
    from .server.melody import MelodySession, train_melody

    echo(f"[7/7] training a MelodyVAE (2-D pad) on the top voices of {corpus!r} for about {seconds:g}s")
    model, s = train_melody(corpus, out / "model", epochs=1000, voice="top", max_seconds=seconds, progress=False)
    best = min(s["history"], key=lambda r: r.get("val/elbo", float("inf"))) if s["history"] else {}
    echo(f"      {s['epochs']:.1f} epochs on {s['train_windows']:,} windows; the best: val onset accuracy "
         f"{best.get('val/onset_accuracy', float('nan')):.3f}, pitch accuracy {best.get('val/pitch_accuracy', float('nan')):.3f}")
    w, _ = load_melodies(corpus, MelodyVAEConfig(), voice="top")
    a, b = sorted(set(w.source))[:2]
    from .corpus.sources import resolve_source

    files = {f.key: f.path for f in resolve_source(corpus, progress=False)[1]}
    session = MelodySession(model, workdir=out)
    written = {}
    path, perf = session.interpolate(str(files[a]), str(files[b]), 5, out=str(out / "interpolation.mid"))
    written["interpolation"] = (path, perf)
    session.bend(0.5, seed=0)
    path, perf = session.generate(session.encode(str(files[a])), out=str(out / "bent.mid"))
    written["bent"] = (path, perf)
    session.reset()
    for name, (path, perf) in written.items():
        plot_pianoroll(perf, path.with_suffix(".png"), title=f"MelodyVAE {name}")
        echo(f"      {path}: {len(perf)} notes ({read_midi(path).end:.1f}s), {path.with_suffix('.png')}")
    return {k: str(v[0]) for k, v in written.items()}

