"""Where training music comes from: a folder, a CSV index, or a built-in corpus."""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorpusError
from ..midi.validate import MIDI_SUFFIXES

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SourceFile:
    path: Path            # absolute path of the MIDI file
    key: str              # stable identifier (path relative to the source root)
    split: str = "train"
    meta: dict = field(default_factory=dict, compare=False, hash=False)


def hash_split(key: str, *, val: float = 0.05, test: float = 0.05) -> str:
    """A split that depends only on the file's key (stable across runs and machines)."""
    h = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2**64
    if h < test:
        return "test"
    if h < test + val:
        return "val"
    return "train"


def from_folder(folder: Path) -> list[SourceFile]:
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    if not files:
        raise CorpusError(f"{folder}: no .mid/.midi files found (searched recursively)")
    out = []
    for p in files:
        key = p.relative_to(folder).as_posix()
        out.append(SourceFile(p.resolve(), key, hash_split(key)))
    return out


def from_csv(index: Path) -> list[SourceFile]:
    """Rows of a CSV with a ``path`` column (relative to the CSV) and optional ``split``.

    Other columns (pianist, album, ...) are kept as metadata.
    """
    index = Path(index)
    root = index.parent
    try:
        with open(index, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "path" not in reader.fieldnames:
                raise CorpusError(f"{index}: CSV index needs a 'path' column, has {reader.fieldnames}")
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{index}: not UTF-8 text ({exc})") from None
    out = []
    for i, row in enumerate(rows, start=2):
        rel = (row.get("path") or "").strip()
        if not rel:
            raise CorpusError(f"{index}:{i}: empty path")
        split = (row.get("split") or "").strip() or hash_split(rel)
        if split not in SPLITS:
            raise CorpusError(f"{index}:{i}: split {split!r} is not one of {SPLITS}")
        meta = {k: v for k, v in row.items() if k not in ("path", "split") and k is not None}
        out.append(SourceFile((root / rel).resolve(), rel, split, meta))
    return out


def resolve_source(src: "str | os.PathLike", *, progress: bool = True) -> tuple[str, list[SourceFile]]:
    """Turn a folder, CSV index, single MIDI file or built-in corpus name into files.

    Returns a description of the source and its files.
    """
    from .builtin import BUILTIN_CORPORA, export_corpus

    s = str(src)
    if s in BUILTIN_CORPORA:
        folder = export_corpus(s, progress=progress)
        return f"builtin:{s}", from_folder(folder)
    p = Path(s)
    if p.is_dir():
        return str(p.resolve()), from_folder(p)
    if p.is_file() and p.suffix.lower() == ".csv":
        return str(p.resolve()), from_csv(p)
    if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES:
        return str(p.resolve()), [SourceFile(p.resolve(), p.name, "train")]
    if not p.exists():
        names = ", ".join(sorted(BUILTIN_CORPORA))
        raise CorpusError(f"{s}: no such file or folder, and not a built-in corpus ({names})")
    raise CorpusError(f"{s}: expected a folder, a .csv index, a MIDI file or a corpus name")


def parse_where(items) -> dict[str, str]:
    """``["pianist=Art Tatum", "split=test"]`` -> ``{"pianist": "Art Tatum", "split": "test"}``."""
    out = {}
    for it in items or []:
        if "=" not in it:
            raise CorpusError(f"--where expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def matches(where, split: str, meta) -> bool:
    """The one row filter: every ``key=value`` of ``where`` holds (``split`` or a CSV column)."""
    return all((split if k == "split" else meta.get(k)) == v for k, v in (where or {}).items())
