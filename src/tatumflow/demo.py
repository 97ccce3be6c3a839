"""The main job on the built-in corpus: what `tatumflow demo` (and `make demo`) runs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from .data import TokenStore, prepare_store, store_statistics
from .midi import write_midi
from .render import plot_pianoroll


def run_demo(out: "str | os.PathLike" = "out/demo", *, corpus: str = "chorales",
             workers: int | None = None, echo: Callable[[str], None] = print) -> dict:
    """Build the corpus, prepare a token store, print its statistics, draw a piece.

    Returns the paths written and the store statistics.
    """
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    echo(f"[1/3] preparing a token store from the built-in corpus {corpus!r}")
    res = prepare_store(corpus, out / "store", workers=workers)
    store = TokenStore(res.store)
    stats = store_statistics(store)
    echo(f"      {stats['files']} files ({stats['failed']} failed), {stats['hours']:.2f} h, "
         f"{stats['notes']:,} notes, {stats['tokens']:,} tokens, "
         f"{stats['tokens_per_note']:.2f} tokens/note, {stats['tokens_per_second']:.1f} tokens/s, "
         f"vocabulary used {stats['vocab_used']}/{stats['vocab_size']}")
    echo("[2/3] decoding one stored piece back to MIDI")
    tok = store.tokenizer()
    i = int(store.indices("test")[0]) if len(store.indices("test")) else 0
    perf = tok.decode(store.tokens(i), metadata={"source": store.files[i]["key"]})
    midi_path = write_midi(perf, out / "decoded.mid")
    echo("[3/3] drawing its piano roll")
    png = plot_pianoroll(perf, out / "pianoroll.png", title=f"{store.files[i]['key']} (decoded from tokens)")
    echo(f"done in {time.perf_counter() - t0:.1f}s: {midi_path}, {png}, store at {res.store}")
    return {"store": str(res.store), "midi": str(midi_path), "pianoroll": str(png), "stats": stats}
