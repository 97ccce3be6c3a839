"""Music-theory features: harmony, melody, rhythm, dynamics, texture.

Numpy face (this package): a Performance in, named values out. Torch face
(:mod:`tatumflow.features.torch_face`): a batch of token ids in, the same
numbers as tensors.
"""

from .api import (
    Features, chord_sequence, dynamics_features, estimate_key, extract_features, feature_vector, harmony_features,
    melody_features, pooled_voicings, rhythm_features, texture_features, unit_of,
)
from .chords import CHORD_SYMBOLS, chord_quality, parse_chord, parse_progression
from .core import CHORD_QUALITIES, FAMILIES, KEY_NAMES

__all__ = [
    "Features", "harmony_features", "melody_features", "rhythm_features", "dynamics_features",
    "texture_features", "extract_features", "feature_vector", "estimate_key", "pooled_voicings",
    "unit_of", "chord_sequence", "FAMILIES", "KEY_NAMES", "CHORD_QUALITIES", "CHORD_SYMBOLS", "parse_chord", "parse_progression",
    "chord_quality",
]
