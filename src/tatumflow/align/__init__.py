"""Performance-to-score alignment (symbolic, numpy only): matched notes, tempo curve, deviations."""

from .notes import Alignment, align
from .score import SCORE_FEATURE_NAMES, score_features, score_for_segment

__all__ = ["Alignment", "align", "score_features", "SCORE_FEATURE_NAMES", "score_for_segment"]
