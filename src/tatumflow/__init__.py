"""TatumFlow: a toolkit for expressive piano MIDI."""

from .errors import CorpusError, MidiReadError, MidiWriteError, StoreError, TatumFlowError, TokenizerConfigError
from .midi import normalize, read_midi, write_midi
from .performance import Performance
from .tokenizer import PerformanceTokenizer, TokenizerConfig

__version__ = "0.1.0"

__all__ = [
    "Performance", "read_midi", "write_midi", "normalize", "PerformanceTokenizer",
    "TokenizerConfig", "TatumFlowError", "MidiReadError", "MidiWriteError",
    "TokenizerConfigError", "StoreError", "CorpusError", "__version__",
]
