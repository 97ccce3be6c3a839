"""Expressive performance tokenizer: config, vocabulary, grammar, augmentation."""

from .augment import Augmentation, feasible_transpositions, note_dropout, time_stretch, transpose, velocity_scale
from .config import TokenizerConfig
from .grammar import Grammar
from .tokenizer import DecodeReport, PerformanceTokenizer, bin_to_velocity, velocity_to_bin
from .vocab import Vocabulary

__all__ = [
    "TokenizerConfig", "Vocabulary", "Grammar", "PerformanceTokenizer", "DecodeReport",
    "velocity_to_bin", "bin_to_velocity", "Augmentation", "transpose", "time_stretch",
    "velocity_scale", "note_dropout", "feasible_transpositions",
]
