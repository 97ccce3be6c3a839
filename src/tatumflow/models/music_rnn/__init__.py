"""Music RNN: seed 004's LSTM next-note model (options A-D), its note dataset and
its streaming (realtime) generator."""

from ..protocol import Family
from .data import NoteWindowDataset, build_config, datasets, performance_to_notes
from .model import OPTIONS, MusicRNN, MusicRNNConfig, note_bits
from .stream import MidiFileSink, MidiPortSink, NotePipeline, NoteStreamer, add_generate_options, generate_command, generate_from_prompt

FAMILY = Family(name="music_rnn", config_class=MusicRNNConfig, model_class=MusicRNN, build_config=build_config,
                datasets=datasets, modes=("continuation",), add_generate_options=add_generate_options,
                generate=generate_command, pipeline=NotePipeline)

__all__ = ["FAMILY", "MusicRNN", "MusicRNNConfig", "OPTIONS", "NoteWindowDataset", "performance_to_notes",
           "note_bits", "NoteStreamer", "NotePipeline", "MidiFileSink", "MidiPortSink", "generate_from_prompt"]
