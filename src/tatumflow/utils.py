"""Small helpers shared across the package (no heavy imports)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import TatumFlowError


_UMASK: list[int] = []


def _file_mode() -> int:
    """0o666 less the process umask: what a plain open() would have created."""
    if not _UMASK:
        mask = os.umask(0)
        os.umask(mask)
        _UMASK.append(mask)
    return 0o666 & ~_UMASK[0]


def fsync_path(path: "str | os.PathLike") -> None:
    """Flush a file's (or a folder's entries') data to the disk; a no-op where the
    platform cannot open folders (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: "str | os.PathLike") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it, rename it onto
    ``path`` and fsync the folder, so a crash leaves the old file or the new one.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if path.is_dir():
        raise TatumFlowError(f"{path}: is a folder, expected a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _file_mode())  # mkstemp creates 0600
        fsync_path(tmp_path)
        os.replace(tmp_path, path)
        fsync_path(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json_atomic(path: "str | os.PathLike", obj: Any, *, indent: int | None = 2) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def cache_dir() -> Path:
    """Where TatumFlow keeps exported corpora: $TATUMFLOW_CACHE or ~/.cache/tatumflow."""
    env = os.environ.get("TATUMFLOW_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tatumflow"


def select_device(name: str = "auto"):
    """A ``torch.device``: ``auto`` picks CUDA, then Apple MPS, then the CPU."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise TatumFlowError(f"device {name!r}: not a device name (auto, cpu, cuda, cuda:N, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TatumFlowError(f"device {name!r} requested but CUDA is not available")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TatumFlowError(f"device {name!r} requested but Apple MPS is not available")
    return dev


def format_table(rows, header) -> str:
    """A plain-text table: columns left-aligned, a dashed rule under the header."""
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Run the block (e.g. building a model, whose layers draw their initial
    weights from torch's global generator) from ``seed``, then give the caller
    back its own random state: no global seeding leaks out."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


# ---- argparse value types: a bad value is one line naming the option (exit 2) -------------
def arg_number(kind: type = float, *, low: "float | None" = None, high: "float | None" = None,
               low_open: bool = False, high_open: bool = False):
    """An argparse ``type`` parsing a finite int/float within ``[low, high]``
    (``low_open``/``high_open`` exclude the bound)."""
    import argparse
    import math

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}")
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        lo_bad = low is not None and (value <= low if low_open else value < low)
        hi_bad = high is not None and (value >= high if high_open else value > high)
        if lo_bad or hi_bad:
            lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
            hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
            bounds = " and ".join(x for x in (lo, hi) if x)
            raise argparse.ArgumentTypeError(f"{text} is out of range (must be {bounds})")
        return value

    parse.__name__ = kind.__name__  # what argparse names in its own messages
    return parse


def arg_path(kind: str):
    """An argparse ``type`` for paths. ``kind``: ``file`` / ``dir`` / ``any`` (must exist),
    ``out-file`` (may exist, not as a folder), ``out-dir`` (may exist, not as a file)."""
    import argparse

    def parse(text: str) -> str:
        p = Path(text)
        if kind in ("file", "dir", "any") and not p.exists():
            what = {"file": "file", "dir": "folder"}.get(kind, "file or folder")
            raise argparse.ArgumentTypeError(f"{text}: no such {what}")
        if kind in ("file", "out-file") and p.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: is a folder, expected a file")
        if kind in ("dir", "out-dir") and p.exists() and not p.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: is a file, expected a folder")
        if kind.startswith("out") and any(q.exists() and not q.is_dir() for q in p.parents):
            raise argparse.ArgumentTypeError(f"{text}: a parent of it is a file")
        return text

    parse.__name__ = "path"
    return parse


# ---- typed config fields: a YAML value of the wrong type is a one-line error ---------------
def _conform(value: Any, hint: Any) -> tuple[bool, Any]:
    """``(ok, value)``: does ``value`` fit the annotation ``hint`` (ints accepted for floats,
    lists for tuples)? Unknown annotations accept anything."""
    import math
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        if value is None:
            return type(None) in args, value
        for a in args:
            ok, v = _conform(value, a)
            if a is not type(None) and ok:
                return True, v
        return False, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    if hint is str:
        return isinstance(value, str), value
    if hint is tuple or origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False, value
        items = [(True, v) for v in value] if not args or args[-1] is Ellipsis and len(args) == 1 else None
        if items is None:
            elem = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
            if len(elem) != len(value):
                return False, value
            items = [_conform(v, h) for v, h in zip(value, elem)]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    if hint is dict or origin is dict:
        return isinstance(value, dict), value
    if hint is list or origin is list:
        return isinstance(value, list), value
    return True, value


def _type_name(hint: Any) -> str:
    import typing

    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union or type(hint).__name__ == "UnionType":
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if typing.get_origin(hint) in (tuple, list):
        return "a list"
    if typing.get_origin(hint) is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a finite number", str: "a string",
            tuple: "a list", dict: "a mapping", list: "a list"}.get(hint, getattr(hint, "__name__", str(hint)))


def check_field_types(obj: Any, error: type = TatumFlowError, *, prefix: str = "") -> None:
    """Check (and normalise: int -> float, list -> tuple) every field of the dataclass
    ``obj`` against its annotation; raise ``error("<prefix>name must be ..., got ...")``."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        ok, fixed = _conform(value, hints.get(f.name, Any))
        if not ok:
            raise error(f"{prefix}{f.name} must be {_type_name(hints[f.name])}, got {value!r}")
        if fixed is not value:
            object.__setattr__(obj, f.name, fixed)
