"""Objective evaluation: per-piece and pairwise metrics, set-vs-set comparison,
the style judge, and the evaluation report."""

from .metrics import (
    METRIC_UNITS, grammar_errors_per_1k, groove_consistency, groove_similarity, mean_ioi, note_density,
    piece_metrics, pitch_class_entropy, pitch_class_histogram, pitch_class_kl, pitch_class_transition,
    pitch_range, polyphony, scale_consistency, self_similarity, transition_cosine, unique_pitches,
)
from .likelihood import token_bits_per_note
from .setcompare import compare_sets

__all__ = [
    "METRIC_UNITS", "piece_metrics", "pitch_class_histogram", "pitch_class_transition", "note_density",
    "mean_ioi", "unique_pitches", "pitch_class_entropy", "scale_consistency", "polyphony", "pitch_range",
    "groove_consistency", "self_similarity", "grammar_errors_per_1k", "pitch_class_kl",
    "transition_cosine", "groove_similarity", "compare_sets", "token_bits_per_note",
]
