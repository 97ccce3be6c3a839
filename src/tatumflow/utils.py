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


@contextlib.contextmanager
def atomic_path(path: "str | os.PathLike") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _file_mode())  # mkstemp creates 0600
        os.replace(tmp_path, path)
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
