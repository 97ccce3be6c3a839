import numpy as np
import pytest

from conftest import midi_file, random_performance, tempo, track
from tatumflow import MidiReadError, Performance, read_midi, write_midi
from tatumflow.midi import repair_overlaps


def test_write_read_round_trip_to_tick_resolution(tmp_path, rng):
    perf = repair_overlaps(random_performance(rng, 300))  # MIDI cannot hold same-pitch overlaps
    path = write_midi(perf, tmp_path / "a.mid")
    back = read_midi(path)
    tick = 0.5 / 960  # seconds per tick at 120 qpm, 960 tpq
    a = perf.notes[np.lexsort((perf.onsets, perf.pitches))]
    b = back.notes[np.lexsort((back.onsets, back.pitches))]
    assert len(a) == len(b)
    assert np.array_equal(a["pitch"], b["pitch"]) and np.array_equal(a["velocity"], b["velocity"])
    assert np.abs(a["onset"] - b["onset"]).max() <= tick
    assert np.abs(a["offset"] - b["offset"]).max() <= 2 * tick
    np.testing.assert_allclose(back.pedals["time"], perf.pedals["time"], atol=tick)
    assert np.array_equal(back.pedals["value"], perf.pedals["value"])


def test_format0_and_tempo_map(tmp_path):
    # 480 tpq; 120 qpm for one quarter, then 60 qpm: the note at tick 960 starts at 0.5 + 1.0 s.
    ev = [(0, tempo(500000)), (0, b"\x90\x3c\x50"), (480, b"\x80\x3c\x00"), (0, tempo(1000000)),
          (480, b"\x90\x3e\x60"), (480, b"\x80\x3e\x00"), (0, b"\xb0\x40\x7f"), (10, b"\xb0\x40\x00")]
    f = tmp_path / "f0.mid"
    f.write_bytes(midi_file(0, 480, [track(ev)]))
    p = read_midi(f)
    np.testing.assert_allclose(p.onsets, [0.0, 1.5], atol=1e-6)
    np.testing.assert_allclose(p.offsets, [0.5, 2.5], atol=1e-6)
    assert list(p.velocities) == [80, 96]
    assert list(p.pedals["value"]) == [127, 0]


def test_format1_merges_tracks_and_skips_drums(tmp_path):
    conductor = track([(0, tempo(500000))])
    piano1 = track([(0, b"\xc0\x00"), (0, b"\x90\x3c\x50"), (480, b"\x80\x3c\x00")])
    piano2 = track([(0, b"\xc1\x01"), (240, b"\x91\x40\x50"), (480, b"\x81\x40\x00")])
    drums = track([(0, b"\x99\x24\x50"), (240, b"\x89\x24\x00")])
    f = tmp_path / "f1.mid"
    f.write_bytes(midi_file(1, 480, [conductor, piano1, piano2, drums]))
    p = read_midi(f)
    assert list(p.pitches) == [60, 64]
    np.testing.assert_allclose(p.onsets, [0.0, 0.25], atol=1e-6)
    assert p.metadata["drum_tracks"] == 1 and p.metadata["programs"] == [0, 1]


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b"\x00\x01garbage" * 50, "not a MIDI file"),
    (b"MThx\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0", "not a MIDI file"),
    ("truncated", "corrupt MIDI"),
    ("absurd_tempo", "absurd tempo"),
])
def test_malformed_input_gets_a_specific_error(tmp_path, content, reason):
    if content == "truncated":
        full = midi_file(0, 480, [track([(0, b"\x90\x3c\x50"), (480, b"\x80\x3c\x00")] * 20)])
        content = full[: len(full) // 2]
    elif content == "absurd_tempo":
        content = midi_file(0, 480, [track([(0, tempo(1)), (0, b"\x90\x3c\x50"), (480, b"\x80\x3c\x00")])])
    f = tmp_path / "bad.mid"
    f.write_bytes(content)
    with pytest.raises(MidiReadError, match=reason) as info:
        read_midi(f)
    assert str(f) in str(info.value) and info.value.path == str(f)


def test_missing_file(tmp_path):
    with pytest.raises(MidiReadError, match="does not exist"):
        read_midi(tmp_path / "nope.mid")


def test_write_is_atomic(tmp_path, monkeypatch):
    perf = Performance.from_arrays([0], [1], [60], [80])
    target = tmp_path / "x.mid"
    write_midi(perf, target)
    before = target.read_bytes()

    import tatumflow.midi.io as mio

    real = mio.performance_to_score

    class Exploding:
        def __init__(self, score):
            self.score = score

        def dump_midi(self, path):
            open(path, "wb").write(b"partial")
            raise OSError("disk full")

    monkeypatch.setattr(mio, "performance_to_score", lambda *a, **k: Exploding(real(*a, **k)))
    with pytest.raises(Exception, match="disk full"):
        write_midi(Performance.from_arrays([0], [2], [62], [80]), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.mid"]


def test_written_files_are_readable_by_others(tmp_path):
    import os
    import stat

    path = write_midi(Performance.from_arrays([0], [1], [60], [80]), tmp_path / "perm.mid")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
