"""Melody windows for the MelodyVAE: MIDI (or stored pieces) -> a 16th-note grid -> windows.

Each source piece becomes one melody: a monophonic file as it is; a polyphonic
one by its top voice (``voice="top"``: at every onset the highest note, cut at
the next onset) or, with ``voice="mono"``, rejected with the reason. Onsets are
snapped to the grid of the file's first beat's tempo (``qpm`` in the metadata;
120 for pieces without one); windows of ``steps`` cells start at every bar. A
window needs ``min_onsets`` notes, all inside ``pitch_min..pitch_max``. Every
file that gives no window is listed in the :class:`LoadReport` with its reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch

from ...errors import TatumFlowError
from ...performance import Performance
from .model import MelodyVAEConfig

VOICES = ("mono", "top")
OVERLAP_TOLERANCE = 0.03  # seconds two notes may overlap and still count as one line (legato)


@dataclass
class MelodyWindows:
    """N windows of T cells: onset (bool), pitch (MIDI, -1 without onset), velocity (0..1),
    duration (cells); ``split`` and ``source`` per window."""

    onset: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    duration: np.ndarray
    split: np.ndarray
    source: list

    def __len__(self) -> int:
        return len(self.onset)

    def take(self, idx) -> "MelodyWindows":
        idx = np.asarray(idx, dtype=np.int64)
        return MelodyWindows(self.onset[idx], self.pitch[idx], self.velocity[idx], self.duration[idx],
                             self.split[idx], [self.source[i] for i in idx])


@dataclass
class LoadReport:
    source: str
    files: int = 0
    used: int = 0
    windows: int = 0
    skipped: list = field(default_factory=list)  # {"file", "reason"}

    def to_dict(self) -> dict:
        return {"source": self.source, "files": self.files, "used": self.used, "windows": self.windows,
                "skipped": self.skipped}


def melody_line(perf: Performance, voice: str = "mono") -> Performance:
    """The one line of ``perf``: as it is when monophonic, else its top voice
    (``voice="top"``); raises :class:`TatumFlowError` with the reason otherwise."""
    if voice not in VOICES:
        raise TatumFlowError(f"voice must be one of {VOICES}, got {voice!r}")
    n = perf.notes
    if len(n) == 0:
        drums = perf.metadata.get("drum_tracks", 0)
        raise TatumFlowError("drum tracks only" if drums else "no notes")
    order = np.lexsort((-n["pitch"].astype(int), n["onset"]))
    n = n[order]
    # Notes starting within the tolerance of the previous onset form one chord.
    new = np.concatenate(([True], np.diff(n["onset"]) > OVERLAP_TOLERANCE))
    overlap = n["offset"][:-1] - n["onset"][1:] > OVERLAP_TOLERANCE
    polyphonic = (~new).any() or overlap.any()
    if polyphonic and voice == "mono":
        share = (np.count_nonzero(~new) + np.count_nonzero(overlap)) / len(n)
        raise TatumFlowError(f"polyphonic ({100 * share:.0f}% of the notes sound together); use the top voice")
    top = n[new].copy()  # the highest note of every onset (sorted by pitch, descending, within an onset)
    top["offset"][:-1] = np.minimum(top["offset"][:-1], top["onset"][1:])  # cut at the next onset
    return perf.replace(notes=top)


def melody_grid(line: Performance, cfg: MelodyVAEConfig, qpm: Optional[float] = None) -> dict[str, np.ndarray]:
    """The whole melody on the grid: arrays over the piece's cells."""
    qpm = float(qpm or line.metadata.get("qpm") or 120.0)
    cell = 60.0 / qpm / cfg.steps_per_beat
    n = line.notes
    on = np.round(n["onset"] / cell).astype(np.int64)
    dur = np.maximum(1, np.round((n["offset"] - n["onset"]) / cell).astype(np.int64))
    L = int(on.max()) + 1 if len(on) else 0
    g = {"onset": np.zeros(L, bool), "pitch": np.full(L, -1, np.int16), "velocity": np.zeros(L, np.float32),
         "duration": np.zeros(L, np.float32)}
    # Two onsets on one cell: the later note wins (a grace note gives way to its main note).
    g["onset"][on] = True
    g["pitch"][on] = n["pitch"]
    g["velocity"][on] = n["velocity"] / 127.0
    g["duration"][on] = dur
    return g


def cut_windows(g: dict, cfg: MelodyVAEConfig, *, min_onsets: int = 2) -> list[slice]:
    """Windows of ``steps`` cells starting at every bar that hold ``min_onsets``
    onsets, all pitches in range."""
    T, bar = cfg.steps, cfg.beats_per_bar * cfg.steps_per_beat
    L = len(g["onset"])
    out = []
    for s in range(0, max(0, L - bar) + 1, bar):
        sl = slice(s, s + T)
        on = g["onset"][sl]
        if on.sum() < min_onsets:
            continue
        p = g["pitch"][sl][on]
        if p.min() < cfg.pitch_min or p.max() > cfg.pitch_max:
            continue
        out.append(sl)
    return out


def window_cells(g: dict, windows: Sequence[slice], cfg: MelodyVAEConfig) -> dict[str, np.ndarray]:
    """The cells of ``windows`` of a grid, (n, T) each: padded past the piece's end,
    durations cut at the window's end."""
    T = cfg.steps
    out = {k: np.stack([np.pad(g[k][sl], (0, T - len(g[k][sl])), constant_values=-1 if k == "pitch" else 0)
                        for sl in windows]) for k in ("onset", "pitch", "velocity", "duration")}
    cell = np.arange(T)[None]
    out["duration"] = np.where(out["onset"], np.minimum(cell + out["duration"], T) - cell, 0).astype(np.float32)
    return out


def _pieces(src: "str | os.PathLike", *, progress: bool) -> tuple[str, Iterator[tuple[str, str, Any]]]:
    """(description, iterator of (key, split, Performance or the exception that stopped it))."""
    from pathlib import Path

    if (Path(src) / "manifest.json").exists():
        from ...data import TokenStore

        store = TokenStore(src)
        tok = store.tokenizer()
        return str(src), ((f["key"], f["split"], tok.decode(store.tokens(i))) for i, f in enumerate(store.files))
    from ...corpus.sources import resolve_source
    from ...midi import read_midi

    desc, files = resolve_source(src, progress=progress)

    def gen():
        for f in files:
            try:
                yield f.key, f.split, read_midi(f.path)
            except TatumFlowError as exc:
                yield f.key, f.split, exc

    return desc, gen()


def load_melodies(src: "str | os.PathLike", cfg: MelodyVAEConfig, *, voice: str = "mono", min_onsets: int = 2,
                  progress: bool = False) -> tuple[MelodyWindows, LoadReport]:
    """Every window of every melody of ``src`` (a folder searched recursively for
    .mid/.midi, a CSV index, a built-in corpus name, a token store or one MIDI file)."""
    desc, pieces = _pieces(src, progress=progress)
    rep = LoadReport(desc)
    cols: dict[str, list] = {"onset": [], "pitch": [], "velocity": [], "duration": [], "split": [], "source": []}
    for key, split, perf in pieces:
        rep.files += 1
        try:
            if isinstance(perf, Exception):
                raise perf
            g = melody_grid(melody_line(perf, voice), cfg)
            wins = cut_windows(g, cfg, min_onsets=min_onsets)
            if not wins:
                raise TatumFlowError(f"no window of {cfg.bars} bars with {min_onsets}+ notes in "
                                     f"{cfg.pitch_min}..{cfg.pitch_max}")
        except TatumFlowError as exc:
            rep.skipped.append({"file": key, "reason": str(exc)})
            continue
        rep.used += 1
        for k, a in window_cells(g, wins, cfg).items():
            cols[k].append(a)
        cols["split"] += [split] * len(wins)
        cols["source"] += [key] * len(wins)
    rep.windows = len(cols["source"])
    if not rep.windows:
        raise TatumFlowError(f"{src}: no usable melody window in {rep.files} files "
                             f"({'; '.join(sorted({s['reason'] for s in rep.skipped})[:3]) or 'no files'})")
    w = MelodyWindows(*(np.concatenate(cols[k]) for k in ("onset", "pitch", "velocity", "duration")),
                      np.array(cols["split"]), cols["source"])
    return w, rep


class MelodyDataset(torch.utils.data.Dataset):
    """Windows as the model's batches; each window also transposed by every interval
    of ``transpose`` (a copy that would leave the pitch range stays untransposed)."""

    def __init__(self, windows: MelodyWindows, cfg: MelodyVAEConfig, transpose: Sequence[int] = ()):
        self.w, self.cfg = windows, cfg
        self.shifts = (0, *[int(t) for t in transpose])

    def __len__(self) -> int:
        return len(self.w) * len(self.shifts)

    def __getitem__(self, i: int) -> dict:
        return {k: v[0] for k, v in self.batch([i]).items()}

    def batch(self, indices) -> dict:
        """Items ``indices`` stacked (what collating them gives), built at once."""
        k, j = np.divmod(np.asarray(indices, dtype=np.int64), len(self.shifts))
        on, pitch = self.w.onset[k], self.w.pitch[k].astype(np.int64)  # (B, T)
        t = np.asarray(self.shifts)[j][:, None]
        lo = np.where(on, pitch, 999).min(1, keepdims=True)
        hi = np.where(on, pitch, -1).max(1, keepdims=True)
        t = np.where((lo + t < self.cfg.pitch_min) | (hi + t > self.cfg.pitch_max), 0, t)  # keep the range
        idx = np.where(on, pitch + t - self.cfg.pitch_min, 0)
        return {"onset": torch.from_numpy(on.astype(np.float32)), "pitch": torch.from_numpy(idx),
                "velocity": torch.from_numpy(self.w.velocity[k]),
                "duration": torch.from_numpy((self.w.duration[k] / self.cfg.steps).astype(np.float32))}


def split_windows(w: MelodyWindows, *, val_every: int = 10) -> tuple[MelodyWindows, MelodyWindows]:
    """Train and validation windows by the sources' splits; when no source is in
    ``val`` (a small folder), every ``val_every``-th source file is held out instead."""
    val = w.split == "val"
    if not val.any():
        files = sorted(set(w.source))
        held = set(files[::val_every]) if len(files) > 1 else set()
        val = np.array([s in held for s in w.source])
        if not val.any():  # one file: hold out its last windows
            val = np.arange(len(w)) >= len(w) - max(1, len(w) // val_every)
    train = (w.split != "test") & ~val
    if not train.any():
        raise TatumFlowError("too few melody windows to train and validate: need at least two")
    return w.take(np.flatnonzero(train)), w.take(np.flatnonzero(val))


def build_config(section: Mapping[str, Any], data) -> MelodyVAEConfig:
    return MelodyVAEConfig(**section)


def datasets(data, cfg: MelodyVAEConfig, section: Mapping[str, Any], seed: int):
    """Train (transposed over ``data.transpose``) and validation windows of ``data``
    (``data.voice``: mono or top; the load report is kept on the train dataset)."""
    w, rep = load_melodies(data, cfg, voice=section.get("voice", "mono"),
                           min_onsets=int(section.get("min_onsets", 2)))
    train, val = split_windows(w)
    ds = MelodyDataset(train, cfg, transpose=section.get("transpose", (-3, -2, -1, 1, 2, 3)))
    ds.report = rep
    return ds, MelodyDataset(val, cfg)
