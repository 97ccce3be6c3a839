"""Torch dataset of fixed-length token windows sampled from a token store."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import StoreError
from ..tokenizer import Augmentation
from .store import TokenStore


class TokenWindowDataset(Dataset):
    """Windows of ``seq_len`` token ids from one split of a store.

    Item ``i`` of epoch ``e`` is drawn with ``numpy.random.default_rng([seed, e, i])``:
    a file chosen in proportion to its length, then a uniform start. The same
    seed, epoch and index always give the same window. With ``augment`` the
    window is decoded, augmented and re-encoded on the fly. Short windows are
    padded with PAD; ``attention_mask`` marks the real tokens.
    ``set_scalar("max_tokens", n)`` keeps only the first ``n`` tokens of every
    window (the rest PAD, same shapes): a length curriculum for the Trainer.

    ``labels`` (names of one metadata column, ``label_key``, e.g. pianists) adds
    an item named ``label_key``: the index of the file's value in ``labels``,
    ``len(labels)`` for any other value, -1 where the file has none. ``label_share``
    (0..1): the share of windows drawn from the files with a listed value (each
    group still in proportion to its files' lengths).
    """

    scalar_names = ("max_tokens",)  # what a Trainer schedule may set (a length curriculum)

    def __init__(self, store: "TokenStore | str", *, split: Optional[str] = "train", seq_len: int = 512,
                 samples_per_epoch: Optional[int] = None, augment: Optional[Augmentation] = None,
                 seed: int = 0, labels: Optional[Sequence[str]] = None, label_key: str = "pianist",
                 label_share: Optional[float] = None):
        self.store = store if isinstance(store, TokenStore) else TokenStore(store)
        if seq_len < 2:
            raise ValueError(f"seq_len must be >= 2, got {seq_len}")
        self.indices = self.store.indices(split)
        if not len(self.indices):
            raise StoreError(f"{self.store.path}: split {split!r} has no files")
        lengths = self.store.lengths()[self.indices]
        self._cum = np.cumsum(lengths)
        self.labels = None if labels is None else list(labels)
        self.label_key = label_key
        self._label = None
        if self.labels is not None:
            meta = [(self.store.files[int(i)].get("meta") or {}).get(label_key) for i in self.indices]
            self._label = np.array([-1 if v in (None, "") else self.labels.index(v) if v in self.labels
                                    else len(self.labels) for v in meta], np.int64)
        self._draw = None  # (cumulative weights) when label_share reweights the files
        if label_share is not None:
            if self._label is None:
                raise ValueError("label_share needs labels")
            if not 0.0 <= label_share <= 1.0:
                raise ValueError(f"label_share must be in [0, 1], got {label_share}")
            named = (self._label >= 0) & (self._label < len(self.labels))
            if not named.any() or named.all():
                raise StoreError(f"{self.store.path}: label_share needs files with and without a listed "
                                 f"{label_key} ({self.labels}) in split {split!r}")
            w = lengths.astype(float)
            w = np.where(named, w * label_share / w[named].sum(), w * (1 - label_share) / w[~named].sum())
            self._draw = np.cumsum(w)
        self.seq_len = seq_len
        self.samples_per_epoch = samples_per_epoch or max(1, int(self._cum[-1]) // seq_len)
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.max_tokens = seq_len
        self.tokenizer = self.store.tokenizer()
        self.pad_id = self.tokenizer.vocab.pad_id

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_scalar(self, name: str, value: float) -> None:
        if name != "max_tokens":
            raise ValueError(f"TokenWindowDataset has no scalar {name!r} (it has max_tokens)")
        self.max_tokens = int(min(max(2, round(value)), self.seq_len))

    def __len__(self) -> int:
        return self.samples_per_epoch

    def window(self, i: int) -> np.ndarray:
        """The raw id window of item ``i`` (numpy, length <= seq_len)."""
        return self._window(i)[1]

    def _window(self, i: int) -> tuple[int, np.ndarray]:
        """(the file's position in ``indices``, the raw id window) of item ``i``."""
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        if self._draw is None:
            k = int(np.searchsorted(self._cum, rng.integers(self._cum[-1]), side="right"))
        else:
            k = min(int(np.searchsorted(self._draw, rng.random() * self._draw[-1], side="right")), len(self._draw) - 1)
        toks = self.store.tokens(int(self.indices[k]))
        start = int(rng.integers(max(1, toks.size - self.seq_len + 1)))
        ids = np.asarray(toks[start : start + self.seq_len], dtype=np.int64)
        if self.augment is not None:
            perf = self.tokenizer.decode(ids)
            perf = self.augment(perf, rng)
            ids = self.tokenizer.encode(perf, sos=start == 0, eos=False)[: self.seq_len]
        return k, ids

    def __getitem__(self, i: int) -> dict:
        k, ids = self._window(i)
        ids = ids[: self.max_tokens]
        out = np.full(self.seq_len, self.pad_id, dtype=np.int64)
        out[: ids.size] = ids
        mask = np.zeros(self.seq_len, dtype=bool)
        mask[: ids.size] = True
        item = {"input_ids": torch.from_numpy(out), "attention_mask": torch.from_numpy(mask)}
        if self._label is not None:
            item[self.label_key] = torch.tensor(int(self._label[k]))
        return item
