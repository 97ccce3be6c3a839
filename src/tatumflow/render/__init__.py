"""Rendering performances: piano-roll images and audio (SoundFont or built-in piano)."""

from .audio import Audio, RenderError, find_soundfont, render_audio, render_file, write_audio
from .pianoroll import plot_pianoroll

__all__ = ["plot_pianoroll", "Audio", "RenderError", "find_soundfont", "render_audio", "render_file", "write_audio"]
