"""The reader rejects every file it cannot read completely and correctly, naming the position."""

import json

import numpy as np
import pytest
from symusic import Score

from conftest import DATA, midi_file, random_performance, tempo, track
from tatumflow import read_midi, write_midi
from tatumflow.cli.main import main
from tatumflow.errors import MidiReadError, TokenizerError
from tatumflow.midi.smf import scan_smf
from tatumflow.midi.validate import reason_kind
from tatumflow.tokenizer import PerformanceTokenizer

NOTES = [(0, b"\x90\x3c\x50"), (240, b"\x3c\x00"), (0, b"\x90\x40\x50"), (240, b"\x40\x00")]


def _reject(tmp_path, data: bytes, *needles: str) -> str:
    p = tmp_path / "x.mid"
    p.write_bytes(data)
    with pytest.raises(MidiReadError) as e:
        read_midi(p)
    assert str(p) in str(e.value)
    for n in needles:
        assert n in e.value.reason, e.value.reason
    return e.value.reason


def _lenient_notes(data: bytes) -> int:
    try:
        return sum(len(t.notes) for t in Score.from_midi(data).tracks)
    except Exception:
        return -1


def test_corruption_that_silently_loses_notes_in_symusic_is_rejected(tmp_path):
    good = write_midi(random_performance(np.random.default_rng(3), 400, pedal=False), tmp_path / "g.mid").read_bytes()
    assert _lenient_notes(good) == 400
    # One byte turned into 0xF0 (sysex): symusic skips what it takes for a sysex body and reads on.
    for i in range(len(good) // 3, len(good)):
        bad = good[:i] + b"\xf0" + good[i + 1:]
        if 0 <= _lenient_notes(bad) < 390:
            break
    else:
        pytest.fail("no silently truncating corruption found")
    reason = _reject(tmp_path, bad, "track 0")
    assert reason_kind(reason) == "corrupt MIDI"
    # A data byte >= 0x80 inside a note message is named with its position.
    i = good.index(b"\x90", len(good) // 3)
    _reject(tmp_path, good[:i + 1] + b"\x85" + good[i + 2:], "invalid data byte 0x85", f"byte {i + 1}")


def test_huge_delta_times_that_wrap_32_bits_are_rejected(tmp_path):
    huge = [(0x0FFFFFFF, b"\xff\x01\x01x")] * 9
    _reject(tmp_path, midi_file(1, 480, [track([(0, tempo(500000))] + NOTES[:2] + huge + NOTES[2:])]),
            "overflows 32 bits", "track 0")


def test_a_billion_seconds_is_an_absurd_span(tmp_path):
    data = midi_file(0, 1, [track([(0, tempo(0xFFFFFF)), (0, b"\x90\x3c\x40"), (0x0FFFFFFF, b"\x80\x3c\x00")])])
    assert len(data) < 60
    _reject(tmp_path, data, "absurd span", "> 24 h")


def _chunk(body: bytes) -> bytes:
    return b"MTrk" + len(body).to_bytes(4, "big") + body


@pytest.mark.parametrize("data,needle", [
    (midi_file(0, 480, [track(NOTES)])[:-3], "says 20 bytes, only 17 remain"),
    (midi_file(0, 480, [track(NOTES)]).replace(b"\x00\x01\x01\xe0", b"\x00\x02\x01\xe0"), "ends after 1 of 2"),
    (midi_file(0, 480, [track(NOTES)]).replace(b"MTrk", b"MTrc"), "expected a track chunk"),
    (midi_file(0, 480, []) [:10] + b"\x00\x01\x01\xe0" + _chunk(b"\x00\x90\x3c\x50\x00\xff\x2f\x00\x00\x80\x3c\x00"),
     "4 bytes after End of Track"),
    (midi_file(0, 480, [track([(0, b"\xf4\x3c\x50")] + NOTES)]), "status byte 0xF4"),
    (midi_file(0, 480, [track([(0, b"\x3c\x50")] + NOTES)]), "data byte 0x3C without a status byte"),
    (midi_file(0, 480, [track([(0, b"\xf0\x03\x7e\xff\xf7")] + NOTES)]), "invalid data byte in a sysex"),
    (midi_file(0, 480, [track([(0, b"\x90\x3c")])]), "runs past the end of the track"),
    (midi_file(0, 480, [_chunk(b"\x8f\xff\xff\xff\x7f\x90\x3c\x50")]), "longer than 4 bytes"),
])
def test_structural_damage_is_named(tmp_path, data, needle):
    _reject(tmp_path, data, needle)


def test_a_sound_file_with_sysex_meta_and_running_status_reads(tmp_path):
    p = tmp_path / "ok.mid"
    p.write_bytes(midi_file(1, 480, [track([(0, tempo(600000)), (0, b"\xff\x03\x03abc")]),
                                     track([(0, b"\xf0\x03\x7e\x7f\xf7"), (0, b"\xc0\x00")] + NOTES)]))
    perf = read_midi(p)
    assert len(perf) == 2 and perf.notes["offset"][-1] == pytest.approx(2 * 240 / 480 * 0.6)


def test_smpte_timed_files_are_read(tmp_path):
    for fps, per_frame in ((25, 40), (30, 80), (24, 10)):
        div = ((256 - fps) << 8) | per_frame
        ticks_per_s = fps * per_frame
        data = midi_file(0, div, [track([(0, tempo(250000)),  # tempo events do not apply to SMPTE time
                                         (ticks_per_s, b"\x90\x3c\x50"), (ticks_per_s // 2, b"\x80\x3c\x00")])])
        p = tmp_path / f"smpte{fps}.mid"
        p.write_bytes(data)
        perf = read_midi(p)
        assert perf.notes["onset"][0] == pytest.approx(1.0) and perf.notes["offset"][0] == pytest.approx(1.5)
        assert perf.metadata["smpte_fps"] == fps
    drop = midi_file(0, ((256 - 29) << 8) | 100, [track([(2997, b"\x90\x3c\x50"), (100, b"\x80\x3c\x00")])])
    assert scan_smf(drop).smpte_fps == pytest.approx(29.97, abs=1e-3)


def test_an_out_of_range_tempo_names_the_tempo_and_tick(tmp_path):
    reason = _reject(tmp_path, midi_file(0, 480, [track([(0, tempo(480)), (0, b"\x90\x3c\x50"),
                                                         (480, b"\x80\x3c\x00")])]), "absurd tempo", "at tick 0")
    assert reason_kind(reason) == "absurd tempo"


def test_validate_counts_a_kind_of_failure_once(tmp_path, capsys):
    for i, us in enumerate((400, 480, 500)):  # three different absurd tempos
        (tmp_path / f"t{i}.mid").write_bytes(midi_file(0, 480, [track([(0, tempo(us))] + NOTES)]))
    assert main(["validate", str(tmp_path)]) == 1
    assert "3 files: 0 ok, 3 failed (absurd tempo: 3)" in capsys.readouterr().out


def test_the_tokenizer_refuses_fractional_ids_and_absurd_spans():
    tok = PerformanceTokenizer()
    assert len(tok.decode(np.array([1.0, 2.0]))) == len(tok.decode(np.array([1, 2])))
    with pytest.raises(TokenizerError, match="whole numbers"):
        tok.decode(np.array([300.5, 12.25]))
    from tatumflow import Performance

    far = Performance.from_arrays([0.0, 1e6], [0.5, 1e6 + 1], [60, 62], [80, 80])
    with pytest.raises(TokenizerError, match="> 24 h"):
        tok.encode(far)


@pytest.mark.data
@pytest.mark.skipif(not (DATA / "pijama").is_dir(), reason="PiJAMA not available")
def test_every_real_file_passes_the_strict_scan():
    files = sorted((DATA / "pijama" / "midi").rglob("*.midi")) + sorted((DATA / "percepiano").rglob("*.mid"))
    assert len(files) > 3000
    bad = []
    for f in files:
        try:
            scan_smf(f.read_bytes(), f)
        except MidiReadError as exc:
            bad.append(str(exc))
    assert not bad, json.dumps(bad[:5])
