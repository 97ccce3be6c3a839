import json

import numpy as np
import pytest

from conftest import random_performance
from tatumflow import Performance, PerformanceTokenizer, TokenizerConfig, TokenizerConfigError
from tatumflow.tokenizer import bin_to_velocity, velocity_to_bin
from tatumflow.tokenizer.roundtrip import roundtrip_report

NOTE_OFF = TokenizerConfig()
DURATION = TokenizerConfig(release="duration")
TOL = 0.005 + 1e-9

GOLDEN_NOTE_OFF = {
    "PAD": 0, "SOS": 1, "EOS": 2, "MASK": 3, "SEG": 4,
    "TIME_SHIFT_10ms": 5, "TIME_SHIFT_250ms": 29, "TIME_SHIFT_5000ms": 504,
    "NOTE_ON_21": 505, "NOTE_ON_60": 544, "NOTE_ON_108": 592,
    "NOTE_OFF_21": 593, "NOTE_OFF_60": 632, "NOTE_OFF_108": 680,
    "VELOCITY_0": 681, "VELOCITY_31": 712, "SUSTAIN_ON": 713, "SUSTAIN_OFF": 714,
}
GOLDEN_DURATION = {
    "NOTE_ON_60": 544, "DURATION_10ms": 593, "DURATION_10000ms": 1592,
    "VELOCITY_0": 1593, "VELOCITY_31": 1624, "SUSTAIN_ON": 1625, "SUSTAIN_OFF": 1626,
}


@pytest.mark.parametrize("cfg,golden,size", [(NOTE_OFF, GOLDEN_NOTE_OFF, 715), (DURATION, GOLDEN_DURATION, 1627)])
def test_golden_event_id_pairs(cfg, golden, size):
    tok = PerformanceTokenizer(cfg)
    assert tok.vocab_size == size
    for name, i in golden.items():
        assert tok.vocab.token_id(name) == i, name
        assert tok.vocab.token_name(i) == name
    assert all(tok.vocab.token_id(tok.vocab.token_name(i)) == i for i in range(size))


def golden_performance():
    return Performance.from_arrays([0.0, 0.003], [0.5, 6.0], [60, 64], [100, 64],
                                   pedal_time=[0.25, 1.0], pedal_value=[127, 0])


def test_golden_encoding_note_off():
    tok = PerformanceTokenizer(NOTE_OFF)
    ids = tok.encode(golden_performance())
    assert tok.token_names(ids) == [
        "SOS", "VELOCITY_25", "NOTE_ON_60", "VELOCITY_16", "NOTE_ON_64",
        "TIME_SHIFT_250ms", "SUSTAIN_ON", "TIME_SHIFT_250ms", "NOTE_OFF_60",
        "TIME_SHIFT_500ms", "SUSTAIN_OFF", "TIME_SHIFT_5000ms", "NOTE_OFF_64", "EOS",
    ]
    assert ids.tolist() == [1, 706, 544, 697, 548, 29, 713, 29, 632, 54, 714, 504, 636, 2]


def test_golden_encoding_duration_and_long_gaps():
    tok = PerformanceTokenizer(DURATION)
    p = Performance.from_arrays([0.0, 12.34], [11.0, 12.35], [60, 62], [80, 80])
    assert tok.token_names(tok.encode(p)) == [
        "SOS", "VELOCITY_20", "NOTE_ON_60", "DURATION_10000ms", "DURATION_1000ms",
        "TIME_SHIFT_5000ms", "TIME_SHIFT_5000ms", "TIME_SHIFT_2340ms",
        "VELOCITY_20", "NOTE_ON_62", "DURATION_10ms", "EOS",
    ]


def test_velocity_bins():
    v = np.arange(128)
    b = velocity_to_bin(v, 32)
    assert b.min() == 0 and b.max() == 31 and np.all(np.diff(b) >= 0)
    centre = bin_to_velocity(np.arange(32), 32)
    assert np.array_equal(velocity_to_bin(centre, 32), np.arange(32))
    assert centre.min() >= 1


@pytest.mark.parametrize("cfg", [NOTE_OFF, DURATION, TokenizerConfig(sustain=False)], ids=["note_off", "duration", "no_sustain"])
def test_round_trip_random_performances(cfg):
    tok = PerformanceTokenizer(cfg)
    for seed in range(20):
        p = random_performance(np.random.default_rng(seed), 300, pedal=cfg.sustain)
        r = roundtrip_report(p, tok)
        assert r.ok, r
        assert r.merged_restrikes <= 2  # random notes rarely re-strike a key within 10 ms
        assert r.max_onset_error <= TOL and r.max_offset_error <= TOL and r.max_pedal_error <= TOL
        ids = tok.encode(p)
        assert tok.grammar.violations(ids).size == 0
        assert tok.grammar_errors(ids) == 0


def test_encode_drops_out_of_range_and_is_deterministic():
    tok = PerformanceTokenizer()
    p = Performance.from_arrays([0, 1, 2], [1, 2, 3], [10, 60, 120], [80, 80, 80])
    assert len(tok.decode(tok.encode(p))) == 1
    assert np.array_equal(tok.encode(p), tok.encode(p))


def test_empty_performance():
    tok = PerformanceTokenizer()
    ids = tok.encode(Performance.empty())
    assert ids.tolist() == [1, 2]
    assert len(tok.decode(ids)) == 0


@pytest.mark.parametrize("cfg", [NOTE_OFF, DURATION], ids=["note_off", "duration"])
def test_decoder_survives_any_ids(cfg):
    tok = PerformanceTokenizer(cfg)
    rng = np.random.default_rng(0)
    total_dropped = 0
    for _ in range(300):
        ids = rng.integers(-5, tok.vocab_size + 5, size=int(rng.integers(0, 400)))
        perf, rep = tok.decode(ids, return_report=True)
        total_dropped += rep.total
        if len(perf):
            assert np.all(perf.offsets > perf.onsets)
            assert perf.pitches.min() >= 21 and perf.pitches.max() <= 108
            assert perf.velocities.min() >= 1 and perf.velocities.max() <= 127
    assert total_dropped > 0
    # other shapes and dtypes are accepted too
    tok.decode(np.zeros((3, 4), dtype=np.uint16))
    tok.decode([])
    tok.decode(np.array([1.0, 2.0]))


def test_decoder_counts_each_kind_of_error():
    tok = PerformanceTokenizer()
    v = tok.vocab
    ids = [v.token_id(n) for n in [
        "NOTE_OFF_60",                       # orphan off
        "NOTE_ON_62",                        # on without velocity
        "VELOCITY_10", "TIME_SHIFT_10ms",    # dangling velocity
        "VELOCITY_10", "NOTE_ON_62",         # re-strike of a sounding pitch
        "SUSTAIN_OFF",                       # redundant pedal
        "MASK",                              # invalid mid-sequence
        "VELOCITY_10", "NOTE_ON_64",         # never closed
    ]] + [99999]
    perf, rep = tok.decode(ids, return_report=True)
    assert rep.orphan_note_off == 1
    assert rep.note_on_without_velocity == 1
    assert rep.dangling_velocity == 1
    assert rep.retriggered_note == 1
    assert rep.redundant_pedal == 1
    assert rep.invalid_ids == 2
    assert rep.unclosed_note >= 1
    assert len(perf) == 3


def test_decode_stops_at_eos():
    tok = PerformanceTokenizer()
    ids = tok.encode(golden_performance())
    tail = tok.encode(Performance.from_arrays([0], [1], [70], [80]))
    assert tok.decode(np.concatenate([ids, tail])) == tok.decode(ids)


def test_grammar_is_data_for_constrained_decoding():
    tok = PerformanceTokenizer()
    v = tok.vocab
    m = tok.grammar.token_matrix()
    assert m.shape == (v.size, v.size) and m.dtype == bool
    vel = v.token_id("VELOCITY_3")
    allowed = np.flatnonzero(tok.grammar.allowed_next(vel))
    assert set(allowed) == set(range(v.note_on.start, v.note_on.stop))
    assert not m[:, v.mask_id].any()
    d = PerformanceTokenizer(DURATION)
    on = d.vocab.token_id("NOTE_ON_60")
    assert set(np.flatnonzero(d.grammar.allowed_next(on))) == set(range(d.vocab.duration.start, d.vocab.duration.stop))
    bad = [v.sos_id, vel, v.token_id("TIME_SHIFT_10ms")]
    assert tok.grammar.violations(bad).tolist() == [2]


def test_config_frozen_versioned_json(tmp_path):
    cfg = TokenizerConfig(release="duration", velocity_bins=16)
    with pytest.raises(Exception):
        cfg.velocity_bins = 8
    cfg.save(tmp_path / "t.json")
    again = TokenizerConfig.load(tmp_path / "t.json")
    assert again == cfg and again.hash == cfg.hash
    assert TokenizerConfig().hash != cfg.hash
    assert json.loads((tmp_path / "t.json").read_text())["version"] == 1


@pytest.mark.parametrize("kw,msg", [
    ({"release": "both"}, "release"), ({"velocity_bins": 0}, "velocity_bins"),
    ({"pitch_min": 90, "pitch_max": 80}, "pitch_min"), ({"version": 99}, "version"),
    ({"time_step_ms": 0}, "time_step_ms"),
])
def test_bad_config_is_rejected(kw, msg):
    with pytest.raises(TokenizerConfigError, match=msg):
        TokenizerConfig(**kw)
    with pytest.raises(TokenizerConfigError, match="unknown"):
        TokenizerConfig.from_dict({"bogus": 1})
