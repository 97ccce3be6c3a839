"""MIDI edge of TatumFlow: reading, writing, normalising and validating files."""

from .io import read_midi, write_midi
from .normalize import normalize, repair_overlaps, resolve_pedal
from .validate import ValidationConfig, ValidationResult, check_performance, validate_file, validate_paths

__all__ = [
    "read_midi", "write_midi", "normalize", "repair_overlaps", "resolve_pedal",
    "ValidationConfig", "ValidationResult", "check_performance", "validate_file", "validate_paths",
]
