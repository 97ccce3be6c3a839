"""Token-id files (``.npy``, or whitespace-separated integers in text) and the vocabulary listing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import TatumFlowError
from ..utils import atomic_path, format_table
from .tokenizer import PerformanceTokenizer


def read_ids(path: "str | os.PathLike") -> np.ndarray:
    """Token ids from a ``.npy`` file or a text file of whitespace-separated integers."""
    path = Path(path)
    if not path.is_file():
        raise TatumFlowError(f"{path}: {'is a folder, expected a file' if path.is_dir() else 'no such file'}")
    if path.suffix == ".npy":
        try:
            ids = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise TatumFlowError(f"{path}: not a .npy array of token ids ({exc})") from None
        if ids.dtype.kind not in "iuf" or (ids.dtype.kind == "f" and not np.all(np.floor(ids) == ids)):
            raise TatumFlowError(f"{path}: token ids are not whole numbers ({ids.dtype})")
    else:
        try:
            ids = np.array([int(t) for t in path.read_text().split()], dtype=np.int64)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TatumFlowError(f"{path}: expected whitespace-separated integer ids ({exc})") from None
    if ids.size == 0:
        raise TatumFlowError(f"{path}: no token ids in the file")
    return ids.reshape(-1).astype(np.int64)


def write_ids(ids: np.ndarray, path: "str | os.PathLike") -> Path:
    """``.npy`` for a ``.npy`` name, else one line of integers; atomic."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, ids)
        else:
            Path(tmp).write_text(" ".join(map(str, np.asarray(ids).tolist())) + "\n")
    return path


def describe_vocabulary(tok: PerformanceTokenizer, *, every_token: bool = False) -> str:
    v = tok.vocab
    text = (f"vocabulary of {v.size} tokens (config hash {tok.config.hash}, release={tok.config.release})\n"
            + format_table(v.describe(), ("block", "first id", "last id", "first token", "last token")))
    if every_token:
        text += "\n\n" + "\n".join(f"{i}\t{v.token_name(i)}" for i in range(v.size))
    return text
