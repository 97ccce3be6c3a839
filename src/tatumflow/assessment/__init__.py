"""Perceptual assessment: predict the 19 PercePiano ratings of a performance.

>>> from tatumflow.assessment import ForestAssessor
>>> ratings = ForestAssessor.load().assess([perf])   # (1, 19), the 1..7 scale divided by 7
"""

from .data import DIMENSIONS, PercePiano, load_percepiano
from .shipped import DEFAULT_MODEL, ForestAssessor

__all__ = ["DIMENSIONS", "PercePiano", "load_percepiano", "DEFAULT_MODEL", "ForestAssessor"]
