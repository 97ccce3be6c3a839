"""Exceptions that say what went wrong and where."""

from __future__ import annotations

import os


class TatumFlowError(Exception):
    """Base class for TatumFlow's own errors."""


class MidiReadError(TatumFlowError):
    """A MIDI file could not be read or is not usable; names the file and the reason."""

    def __init__(self, path: "str | os.PathLike", reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MidiWriteError(TatumFlowError):
    def __init__(self, path: "str | os.PathLike", reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot write {self.path}: {reason}")


class TokenizerConfigError(TatumFlowError, ValueError):
    """An invalid tokenizer configuration."""


class TokenizerError(TatumFlowError, ValueError):
    """Ids or a performance the tokenizer cannot take (not whole numbers, an absurd span)."""


class StoreError(TatumFlowError):
    """A token store is missing, incomplete or inconsistent."""


class CorpusError(TatumFlowError):
    """A corpus name, folder or index cannot be used."""
