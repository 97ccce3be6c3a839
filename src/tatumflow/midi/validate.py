"""File validation: is this MIDI file a usable piano performance?"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from ..errors import MidiReadError
from ..performance import Performance
from .io import read_midi

#: General MIDI programs 0-7 are the acoustic and electric pianos.
PIANO_PROGRAMS: tuple[int, ...] = tuple(range(8))
MIDI_SUFFIXES = (".mid", ".midi")


@dataclass(frozen=True)
class ValidationConfig:
    min_seconds: float = 1.0
    max_seconds: float = 4 * 3600.0
    min_notes: int = 8
    #: Allowed programs of note-carrying tracks; ``None`` allows any program.
    allowed_programs: Optional[tuple[int, ...]] = PIANO_PROGRAMS

    def __post_init__(self) -> None:
        if self.min_seconds < 0 or self.max_seconds <= self.min_seconds:
            raise ValueError(
                f"need 0 <= min_seconds < max_seconds, got {self.min_seconds}, {self.max_seconds}"
            )
        if self.min_notes < 1:
            raise ValueError(f"min_notes must be >= 1, got {self.min_notes}")


@dataclass
class ValidationResult:
    path: str
    ok: bool
    reason: str = ""
    seconds: float = 0.0
    notes: int = 0
    extra: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d


def check_performance(perf: Performance, config: ValidationConfig = ValidationConfig()) -> str:
    """The reason ``perf`` is unusable, or ``""`` when it passes every check."""
    n = len(perf)
    seconds = perf.end
    if n == 0:
        return "no notes"
    if config.allowed_programs is not None:
        bad = [p for p in perf.metadata.get("programs", []) if p not in config.allowed_programs]
        if bad:
            return f"non-piano programs {bad}"
    if seconds < config.min_seconds:
        return f"too short ({seconds:.2f}s < {config.min_seconds:g}s)"
    if seconds > config.max_seconds:
        return f"too long ({seconds:.0f}s > {config.max_seconds:g}s)"
    if n < config.min_notes:
        return f"too few notes ({n} < {config.min_notes})"
    return ""


def validate_file(path: "str | os.PathLike", config: ValidationConfig = ValidationConfig()
                  ) -> tuple[ValidationResult, Optional[Performance]]:
    """Read and check one file. Never raises for a bad file: the result says why."""
    try:
        perf = read_midi(path)
    except MidiReadError as exc:
        return ValidationResult(str(path), False, exc.reason), None
    reason = check_performance(perf, config)
    res = ValidationResult(str(path), not reason, reason, round(perf.end, 3), len(perf))
    return res, perf


def iter_midi_files(paths: Iterable["str | os.PathLike"]) -> Iterator[Path]:
    """Expand files and folders (recursively, sorted) into MIDI file paths."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            yield from sorted(
                q for q in p.rglob("*") if q.suffix.lower() in MIDI_SUFFIXES and q.is_file()
            )
        else:
            yield p


def validate_paths(paths: Sequence["str | os.PathLike"], config: ValidationConfig = ValidationConfig(),
                   *, progress: bool = False) -> list[ValidationResult]:
    files = list(iter_midi_files(paths))
    if progress:
        from tqdm import tqdm

        files_iter = tqdm(files, desc="validate", unit="file", leave=False)
    else:
        files_iter = files
    return [validate_file(f, config)[0] for f in files_iter]


def reason_kind(reason: str) -> str:
    """The kind of a failure, without its numbers: ``"absurd tempo 0.5 qpm at tick 9"`` -> ``"absurd tempo"``."""
    m = re.match(r"[^\d(\[:]*", reason)
    return m.group(0).strip() or reason


def format_results(results: Sequence[ValidationResult]) -> str:
    """The table `tatumflow validate` prints, and a summary line counting the failure reasons."""
    from ..utils import format_table

    rows = [("ok" if r.ok else "FAIL", f"{r.seconds:.1f}", r.notes, r.reason, r.path) for r in results]
    reasons: dict[str, int] = {}
    for r in results:
        if not r.ok:
            key = reason_kind(r.reason)
            reasons[key] = reasons.get(key, 0) + 1
    n_ok = sum(r.ok for r in results)
    return (format_table(rows, ("status", "seconds", "notes", "reason", "path"))
            + f"\n\n{len(results)} files: {n_ok} ok, {len(results) - n_ok} failed"
            + ("" if not reasons else " (" + ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) + ")"))
