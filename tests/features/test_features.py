import numpy as np
import pytest
import torch

from conftest import random_performance
from tatumflow import Performance, PerformanceTokenizer, TokenizerConfig
from tatumflow.features import (
    FAMILIES, estimate_key, extract_features, harmony_features, melody_features, pooled_voicings,
    rhythm_features, texture_features, dynamics_features, unit_of,
)
from tatumflow.features.torch_face import TheoryFeatures


def chord_seq(chords, dur=1.0, vel=80):
    on, off, pitch, v = [], [], [], []
    for i, ch in enumerate(chords):
        for p in ch:
            on.append(i * dur)
            off.append((i + 1) * dur)
            pitch.append(p)
            v.append(vel)
    return Performance.from_arrays(on, off, pitch, v)


def test_key_of_scales():
    c_major = Performance.from_arrays(np.arange(16) * 0.5, np.arange(16) * 0.5 + 0.5,
                                      [60, 62, 64, 65, 67, 69, 71, 72] * 2, [80] * 16)
    assert estimate_key(c_major)[0] == "C major"
    a_minor = chord_seq([[57, 60, 64], [52, 56, 59, 62], [57, 60, 64], [50, 53, 57], [52, 56, 59], [57, 60, 64]])
    assert estimate_key(a_minor)[0] == "A minor"
    eb = Performance.from_arrays(np.arange(8) * 0.5, np.arange(8) * 0.5 + 0.5,
                                 [63, 65, 67, 68, 70, 72, 74, 75], [80] * 8)
    assert estimate_key(eb)[0] == "Eb major"


@pytest.mark.parametrize("notes,quality", [
    ([48, 52, 55], "maj"), ([50, 53, 57, 60], "m7"), ([43, 47, 50, 53], "7"), ([48, 52, 55, 59], "maj7"),
    ([47, 50, 53, 57], "m7b5"), ([48, 51, 54, 57], "dim7"), ([48, 52, 56], "aug"), ([48, 53, 55], "sus4"),
])
def test_chord_templates_recognise_jazz_voicings(notes, quality):
    h = harmony_features(chord_seq([notes] * 4))
    assert h[f"chord_type.{quality}"] == 1.0
    assert h["chorded_fraction"] > 0.7


def test_ambiguous_sets_read_as_jazz_chords():
    h = harmony_features(chord_seq([[48, 52, 55, 57]] * 4))  # C E G A: C6 or Am7
    assert h["chord_type.m7"] == 1.0


def test_ii_v_i_changes():
    h = harmony_features(chord_seq([[50, 53, 57, 60], [43, 47, 50, 53], [48, 52, 55, 59], [48, 52, 55, 59]]))
    assert h["chord_type.m7"] == h["chord_type.7"] == 0.25 and h["chord_type.maj7"] == 0.5
    assert h["chord_change_rate"] == pytest.approx(2 / 4.0)
    assert h["chord_type_entropy"] == pytest.approx(1.5)


def test_melody_skyline_ignores_lower_voices():
    # melody C D E G above a held bass: skyline intervals +2 +2 +3
    perf = Performance.from_arrays([0, 0, 1, 2, 3], [4, 1, 2, 3, 4], [36, 60, 62, 64, 67], [60, 80, 80, 80, 80])
    m = melody_features(perf)
    assert m["interval.+2"] == pytest.approx(2 / 3) and m["interval.+3"] == pytest.approx(1 / 3)
    assert m["contour.up"] == 1.0 and m["stepwise_ratio"] == pytest.approx(2 / 3)
    assert m["skyline_range"] == 7


def test_rhythm_tempo_and_swing():
    beat = 0.5  # 120 bpm
    straight = np.arange(64) * beat
    r = rhythm_features(Performance.from_arrays(straight, straight + 0.1, [60] * 64, [90] * 64))
    assert r["tempo_bpm"] == pytest.approx(120, abs=1)
    swung_off = np.arange(64) * beat + beat * 2 / 3  # long-short eighths, 2:1
    on = np.sort(np.concatenate([straight, swung_off]))
    vel = np.where(np.isin(on, straight), 100, 70)
    r = rhythm_features(Performance.from_arrays(on, on + 0.1, [60] * len(on), vel))
    assert r["tempo_bpm"] == pytest.approx(120, abs=1)
    assert r["swing_ratio"] == pytest.approx(2.0, abs=0.1)
    assert r["note_density"] == pytest.approx(len(on) / (on[-1] + 0.1))


def test_dynamics_and_texture():
    on = np.arange(40) * 0.25
    cresc = Performance.from_arrays(on, on + 0.2, [60] * 40, np.linspace(30, 110, 40).astype(int))
    d = dynamics_features(cresc)
    assert d["velocity_trend"] > 0 and d["velocity_range"] == 80
    t = texture_features(chord_seq([[48, 52, 55, 59]] * 8))
    assert t["voicing_size.4"] == 1.0 and t["polyphony"] == pytest.approx(4.0)
    ped = Performance.from_arrays([0], [10], [60], [80], pedal_time=[0, 5], pedal_value=[127, 0])
    assert texture_features(ped)["pedal_fraction"] == pytest.approx(0.5)


def test_features_are_never_constant_and_have_units():
    a = extract_features(random_performance(np.random.default_rng(0), 300))
    b = extract_features(random_performance(np.random.default_rng(1), 300))
    for fam, names in FAMILIES.items():
        assert a[fam].shape == (1, len(names)) and np.isfinite(a[fam]).all()
        assert not np.allclose(a[fam], b[fam]), fam
        assert all(unit_of(n) for n in names)
    empty = extract_features(Performance.empty())
    assert all(np.all(v == 0) | np.isfinite(v).all() for v in empty.values())


def test_pooled_voicings():
    a = chord_seq([[48, 52, 55], [50, 54, 57], [48, 51, 55]])  # major, major (transposed), minor
    assert pooled_voicings([a]) == 2
    assert pooled_voicings([a, chord_seq([[48, 52, 55, 59]])]) == 3


def _torch_vs_numpy(tok, rows):
    """The batch face (both kernel choices) equals the numpy face on the decoded rows."""
    ids = torch.as_tensor(np.stack(rows))
    ref = extract_features([tok.decode(r) for r in rows])
    for kernels in ("torch", "numpy"):
        got = TheoryFeatures(tok, kernels=kernels)(ids)
        for fam in FAMILIES:
            np.testing.assert_allclose(got[fam].numpy(), ref[fam], rtol=1e-9, atol=1e-9, err_msg=f"{kernels} {fam}")


@pytest.mark.parametrize("release", ["note_off", "duration"])
def test_torch_face_equals_numpy_face_on_windows(release):
    tok = PerformanceTokenizer(TokenizerConfig(release=release))
    rng = np.random.default_rng(5)
    rows = []
    for i in range(12):
        ids = tok.encode(random_performance(np.random.default_rng(i), 400))
        s = int(rng.integers(0, len(ids) - 256))
        rows.append(ids[s : s + 256])  # windows start and end mid-note
    _torch_vs_numpy(tok, rows)


def test_torch_face_equals_numpy_face_on_garbage():
    tok = PerformanceTokenizer()
    rng = np.random.default_rng(0)
    rows = [rng.integers(-3, tok.vocab_size + 3, 300) for _ in range(16)]
    rows[3][10] = tok.vocab.eos_id  # an early end
    _torch_vs_numpy(tok, rows)


def test_torch_face_on_real_windows(pijama_index, tmp_path):
    from tatumflow.data import TokenStore, prepare_store
    import csv

    from conftest import write_subset_index

    rows = list(csv.DictReader(open(pijama_index, encoding="utf-8")))[::120]
    idx = write_subset_index(pijama_index, rows, tmp_path / "i.csv")
    prepare_store(idx, tmp_path / "s", workers=1, progress=False)
    store = TokenStore(tmp_path / "s")
    windows = [np.asarray(store.tokens(i))[500:1524].astype(np.int64) for i in range(len(store))]
    _torch_vs_numpy(store.tokenizer(), [w for w in windows if len(w) == 1024])
