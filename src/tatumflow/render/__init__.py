"""Rendering performances: piano-roll images (audio rendering comes later)."""

from .pianoroll import plot_pianoroll

__all__ = ["plot_pianoroll"]
