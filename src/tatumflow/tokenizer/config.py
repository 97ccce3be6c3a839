"""Tokenizer configuration: frozen, versioned, saved as JSON beside every store."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from ..errors import TokenizerConfigError
from ..utils import check_field_types

#: Bumped whenever the meaning of a config (the id layout) changes.
TOKENIZER_SCHEMA_VERSION = 1

Release = Literal["note_off", "duration"]


@dataclass(frozen=True)
class TokenizerConfig:
    """Expressive performance tokenizer settings.

    Times are quantised to ``time_step_ms``; a gap is written as TIME_SHIFT
    tokens of 1..``max_shift_steps`` steps (longer gaps repeat the largest).
    Note ends are either NOTE_OFF tokens or DURATION tokens after each NOTE_ON
    (``release``), never both. Each NOTE_ON is preceded by its VELOCITY bin.
    """

    version: int = TOKENIZER_SCHEMA_VERSION
    time_step_ms: int = 10
    max_shift_steps: int = 500
    pitch_min: int = 21
    pitch_max: int = 108
    velocity_bins: int = 32
    release: Release = "note_off"
    max_duration_steps: int = 1000
    sustain: bool = True

    def __post_init__(self) -> None:
        check_field_types(self, TokenizerConfigError, prefix="tokenizer ")
        if self.version != TOKENIZER_SCHEMA_VERSION:
            raise TokenizerConfigError(
                f"tokenizer config version {self.version} is not supported "
                f"(this TatumFlow reads version {TOKENIZER_SCHEMA_VERSION})"
            )
        if not 1 <= self.time_step_ms <= 1000:
            raise TokenizerConfigError(f"time_step_ms must be in 1..1000, got {self.time_step_ms}")
        if self.max_shift_steps < 1:
            raise TokenizerConfigError(f"max_shift_steps must be >= 1, got {self.max_shift_steps}")
        if not 0 <= self.pitch_min <= self.pitch_max <= 127:
            raise TokenizerConfigError(
                f"need 0 <= pitch_min <= pitch_max <= 127, got {self.pitch_min}..{self.pitch_max}"
            )
        if not 1 <= self.velocity_bins <= 128:
            raise TokenizerConfigError(f"velocity_bins must be in 1..128, got {self.velocity_bins}")
        if self.release not in ("note_off", "duration"):
            raise TokenizerConfigError(
                f"release must be 'note_off' or 'duration', got {self.release!r}"
            )
        if self.max_duration_steps < 1:
            raise TokenizerConfigError(
                f"max_duration_steps must be >= 1, got {self.max_duration_steps}"
            )

    @property
    def time_step(self) -> float:
        """Seconds per time step."""
        return self.time_step_ms / 1000.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TokenizerConfig":
        if not isinstance(d, dict):
            raise TokenizerConfigError(f"a tokenizer config is a mapping of settings, got {d!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TokenizerConfigError(f"unknown tokenizer config keys: {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TokenizerConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TokenizerConfigError(f"tokenizer config is not valid JSON: {exc}") from None
        return cls.from_dict(d)

    def save(self, path: "str | Path") -> None:
        from ..utils import atomic_path

        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: "str | Path") -> "TokenizerConfig":
        try:
            return cls.from_json(Path(path).read_text())
        except TokenizerConfigError as exc:
            raise TokenizerConfigError(f"{path}: {exc}") from None

    @cached_property
    def hash(self) -> str:
        """A short stable hash of the config: stores and checkpoints compare it."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]
