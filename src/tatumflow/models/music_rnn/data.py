"""The Music RNN's data: notes (pitch, step, duration) and windows of them from a token store."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ...data import TokenStore
from ...errors import TatumFlowError
from .model import MusicRNNConfig


def performance_to_notes(perf) -> np.ndarray:
    """(N, 4) float32 notes (pitch, step s, duration s, velocity) in onset order."""
    n = perf.notes
    on = n["onset"]
    step = np.diff(on, prepend=on[0] if len(on) else 0.0)
    return np.stack([n["pitch"].astype(np.float32), step.astype(np.float32),
                     (n["offset"] - on).astype(np.float32), n["velocity"].astype(np.float32)], axis=1)


class NoteWindowDataset(torch.utils.data.Dataset):
    """Every window of ``seq_len + 1`` consecutive notes of one split of a token store.

    Files are decoded once into note arrays. ``set_scalar("seq_len", v)`` changes
    the window length (a curriculum)."""

    scalar_names = ("seq_len",)  # what a Trainer schedule may set (a length curriculum)

    def __init__(self, store, *, split: str = "train", seq_len: int = 50):
        store = store if isinstance(store, TokenStore) else TokenStore(store)
        tok = store.tokenizer()
        self.arrays = [performance_to_notes(tok.decode(store.tokens(int(i)))) for i in store.indices(split)]
        if not self.arrays:
            raise TatumFlowError(f"{store.path}: split {split!r} has no files")
        self.n_notes = sum(len(a) for a in self.arrays)
        self.set_seq_len(seq_len)

    def set_seq_len(self, seq_len: int) -> None:
        self.seq_len = int(seq_len)
        counts = np.array([max(0, len(a) - self.seq_len) for a in self.arrays])
        if counts.sum() == 0:
            raise TatumFlowError(f"no piece has more than {self.seq_len} notes")
        self._cum = np.cumsum(counts)

    def set_scalar(self, name: str, value: float) -> None:
        if name != "seq_len":
            raise TatumFlowError(f"NoteWindowDataset has no scalar {name!r}")
        if int(round(value)) != self.seq_len:
            self.set_seq_len(int(round(value)))

    def __len__(self) -> int:
        return int(self._cum[-1])

    def __getitem__(self, i: int) -> dict:
        f = int(np.searchsorted(self._cum, i, side="right"))
        start = i - (int(self._cum[f - 1]) if f else 0)
        w = self.arrays[f][start : start + self.seq_len + 1].copy()
        w[0, 1] = 0.0  # the first step refers to a note outside the window
        return {"notes": torch.from_numpy(w)}


def build_config(section: Mapping[str, Any], store) -> MusicRNNConfig:
    return MusicRNNConfig(**section)


def datasets(store, cfg: MusicRNNConfig, data: Mapping[str, Any], seed: int):
    return (NoteWindowDataset(store, split="train", seq_len=cfg.seq_len),
            NoteWindowDataset(store, split="val", seq_len=cfg.seq_len))
