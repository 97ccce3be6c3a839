"""Scores as performances: a MIDI file, or MusicXML rendered deadpan through music21."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import MidiReadError
from ..performance import Performance
from .io import read_midi

XML_SUFFIXES = (".musicxml", ".xml", ".mxl")


def read_score(path: "str | os.PathLike") -> Performance:
    """The notes of a score: ``.mid``/``.midi`` read as they are, MusicXML (``.musicxml``,
    ``.xml``, ``.mxl``) parsed by music21 and played deadpan at its written tempo."""
    path = Path(path)
    if path.suffix.lower() not in XML_SUFFIXES:
        return read_midi(path)
    if not path.is_file():
        raise MidiReadError(path, "file does not exist")
    try:
        import music21

        parsed = music21.converter.parse(str(path))
        with tempfile.TemporaryDirectory() as tmp:
            mid = Path(tmp) / "score.mid"
            parsed.write("midi", fp=str(mid))
            perf = read_midi(mid)
    except MidiReadError:
        raise
    except Exception as exc:  # music21 raises many kinds for a broken file
        raise MidiReadError(path, f"not a readable MusicXML score ({type(exc).__name__}: {exc})") from None
    return perf.replace(metadata={**perf.metadata, "source": str(path)})
