"""Round trip and store on the real datasets (skipped when ../shared/data is absent)."""

import csv

import numpy as np

from tatumflow import PerformanceTokenizer, TokenizerConfig, read_midi
from tatumflow.data import TokenStore, prepare_store
from tatumflow.midi import normalize
from tatumflow.tokenizer.roundtrip import roundtrip_report

TOL = 0.005 + 1e-6  # symusic stores seconds as float32


def pijama_sample(index, n):
    rows = list(csv.DictReader(open(index, encoding="utf-8")))
    pick = np.random.default_rng(0).choice(len(rows), n, replace=False)
    return [index.parent / rows[i]["path"] for i in sorted(pick)]


def check(paths, cfg, *, want_pedal=False):
    tok = PerformanceTokenizer(cfg)
    pedals = short = total = 0
    for p in paths:
        perf = read_midi(p)
        r = roundtrip_report(perf, tok)
        assert r.ok, (p, r)
        assert r.max_onset_error <= TOL and r.max_offset_error <= TOL and r.max_pedal_error <= TOL, (p, r)
        # A note whose ends round to the same 10 ms step is lengthened to one step: its
        # offset may move by up to 1.5 steps (PercePiano has 111 such notes in 156,972).
        assert r.max_short_offset_error <= 0.015 + 1e-6
        short += r.short_notes + r.merged_restrikes  # double triggers within 10 ms merge
        total += r.notes_in
        pedals += r.pedal_intervals_in
    assert short <= 0.01 * total  # measured over all PercePiano: 111 of 156,972 (note_off)
    if want_pedal:
        assert pedals > 0


def test_pijama_round_trip_both_modes(pijama_index):
    paths = pijama_sample(pijama_index, 60)
    check(paths, TokenizerConfig())
    check(paths, TokenizerConfig(release="duration"))


def test_percepiano_round_trip_with_pedal(percepiano_midi):
    paths = sorted(percepiano_midi.glob("*.mid"))[::6]
    check(paths, TokenizerConfig(), want_pedal=True)
    check(paths, TokenizerConfig(release="duration"), want_pedal=True)


def test_percepiano_normalisation_is_idempotent(percepiano_midi):
    for p in sorted(percepiano_midi.glob("*.mid"))[:40]:
        perf = read_midi(p)
        once = normalize(perf)
        assert normalize(once) == once
        assert once.pedals.size == perf.pedals.size


def test_prepare_real_subset(pijama_index, tmp_path):
    # A CSV with 40 real rows, paths made relative to a CSV in tmp_path.
    from conftest import write_subset_index

    rows = list(csv.DictReader(open(pijama_index, encoding="utf-8")))[:40]
    out = write_subset_index(pijama_index, rows, tmp_path / "index.csv")
    res = prepare_store(out, tmp_path / "store", workers=2, progress=False)
    assert res.files == 40 and res.failed == 0
    store = TokenStore(tmp_path / "store")
    assert {f["meta"]["pianist"] for f in store.files} == {r["pianist"] for r in rows}
