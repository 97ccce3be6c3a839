import json

import numpy as np
import pytest

from conftest import random_performance
from tatumflow import Performance, read_midi, write_midi
from tatumflow.evaluation import (
    compare_sets, groove_consistency, pitch_class_entropy, pitch_class_kl, polyphony,
    scale_consistency, self_similarity, transition_cosine, unique_pitches,
)
from tatumflow.evaluation.sanity import shuffle_pitches


def test_metric_values_on_known_pieces():
    scale = Performance.from_arrays(np.arange(7) * 0.5, np.arange(7) * 0.5 + 0.5, [60, 62, 64, 65, 67, 69, 71], [80] * 7)
    assert scale_consistency(scale) == 1.0
    assert pitch_class_entropy(scale) == pytest.approx(np.log2(7))
    assert unique_pitches(scale) == 7
    triad = Performance.from_arrays([0, 0, 0, 2], [2, 2, 1, 3], [60, 64, 67, 72], [80] * 4)
    assert polyphony(triad) == pytest.approx((2 + 2 + 1 + 1) / 3)
    assert pitch_class_kl(scale, scale) == pytest.approx(0.0)
    assert transition_cosine(scale, scale) == pytest.approx(1.0)


def test_structure_metrics_see_repetition():
    rng = np.random.default_rng(0)
    motif = random_performance(rng, 30, pedal=False, span=4.0).slice(0, 4.0)
    reps = [motif.notes.copy() for _ in range(8)]
    for k, n in enumerate(reps):
        n["onset"] += 4.0 * k
        n["offset"] += 4.0 * k
    repeated = Performance(np.concatenate(reps))
    noise = random_performance(rng, 240, pedal=False, span=32.0)
    assert self_similarity(repeated) > 0.99 > self_similarity(noise)
    # music in three adjacent spans only: the middle one has no non-neighbour, the outer two
    # compare with each other; never -inf (it poisoned set comparisons with NaN)
    notes = np.concatenate(reps[:3])
    notes["offset"][np.argmax(notes["onset"])] = 13.0  # the piece ends after 3 spans, its notes in spans 0-2
    three = Performance(notes)
    assert np.isfinite(self_similarity(three)) and self_similarity(three) > 0.99
    beat = np.arange(128) * 0.25
    steady = Performance.from_arrays(beat, beat + 0.1, [60] * 128, [90] * 128)
    assert groove_consistency(steady) > 0.95


@pytest.mark.data
def test_metrics_match_muspy_on_real_files(percepiano_midi):
    muspy = pytest.importorskip("muspy")
    for f in sorted(percepiano_midi.glob("*.mid"))[::100]:
        p, m = read_midi(f), muspy.read_midi(str(f))
        assert pitch_class_entropy(p) == pytest.approx(muspy.pitch_class_entropy(m), abs=1e-9)
        assert unique_pitches(p) == muspy.n_pitches_used(m)
        assert scale_consistency(p) == pytest.approx(muspy.scale_consistency(m), abs=1e-9)
        assert polyphony(p) == pytest.approx(muspy.polyphony(m), rel=0.01)  # continuous time vs ticks


def test_set_comparison_separates_sets():
    rng = np.random.default_rng(0)
    a = {"x": list(rng.normal(0, 1, 40)), "v": list(rng.normal(0, 1, (40, 3)))}
    a2 = {"x": list(rng.normal(0, 1, 40)), "v": list(rng.normal(0, 1, (40, 3)))}
    far = {"x": list(rng.normal(3, 1, 40)), "v": list(rng.normal(2, 1, (40, 3)))}
    same, diff = compare_sets(a2, a), compare_sets(far, a)
    assert same["summary"]["mean_oa"] > 0.8 > 0.5 > diff["summary"]["mean_oa"]
    assert same["summary"]["mean_kl"] < 0.1 < diff["summary"]["mean_kl"]


def test_evaluate_writes_report(tmp_path):
    from tatumflow.cli.main import main

    for name, seed0 in (("gen", 0), ("ref", 100)):
        for i in range(5):
            write_midi(random_performance(np.random.default_rng(seed0 + i), 300, span=40.0), tmp_path / name / f"{i}.mid")
    (tmp_path / "gen" / "bad.mid").write_bytes(b"nope")
    assert main(["evaluate", str(tmp_path / "gen"), str(tmp_path / "ref"), "--out", str(tmp_path / "rep")]) == 1
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["gen"]["pieces"] == 5 and rep["gen"]["failures"][0]["reason"].startswith("not a MIDI file")
    assert 0 <= rep["set_vs_set"]["summary"]["mean_oa"] <= 1
    assert rep["style"]["target"] == "Art Tatum" and len(rep["style"]["gen_pieces"]) == 5
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "mean overlapping area" in md and "![Distributions](distributions.png)" in md
    for png in ("distributions.png", "pianoroll_gen.png", "pianoroll_ref.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_on_a_token_store_reports_grammar(tmp_path):
    from tatumflow.data import prepare_store
    from tatumflow.evaluation.report import evaluate

    for i in range(4):
        write_midi(random_performance(np.random.default_rng(i), 200), tmp_path / "m" / f"{i}.mid")
    prepare_store(tmp_path / "m", tmp_path / "s", workers=1, progress=False)
    rep = evaluate(tmp_path / "s", tmp_path / "m", tmp_path / "r", plots=False, progress=False)
    assert rep["gen"]["pieces"] == 4
    assert rep["gen"]["grammar_errors_per_1k"] == 0.0  # the encoder writes only valid sequences
    assert "grammar_errors_per_1k" not in rep["ref"]   # MIDI input has no ids to judge
    assert "grammar errors per 1,000 tokens" in (tmp_path / "r" / "report.md").read_text()
    # ids a model might emit: broken grammar is counted
    from tatumflow.evaluation.report import load_set

    s = load_set(tmp_path / "s", name="x", progress=False)
    from tatumflow.evaluation import grammar_errors_per_1k
    from tatumflow.data import TokenStore

    tok = TokenStore(tmp_path / "s").tokenizer()
    assert grammar_errors_per_1k(np.random.default_rng(0).integers(0, tok.vocab_size, 500), tok) > 100
    assert len(s.grammar_errors_per_1k) == 4


def test_shuffled_pitches_are_caught(tmp_path):
    from tatumflow.evaluation.report import evaluate

    rng = np.random.default_rng(0)
    real = [random_performance(np.random.default_rng(i), 300, span=40.0) for i in range(8)]
    # make "real" melodic: stepwise lines
    melodic = []
    for p in real:
        n = p.notes.copy()
        n["pitch"] = 60 + np.cumsum(rng.choice([-2, -1, 1, 2], len(n))) % 24
        melodic.append(p.replace(notes=n))
    rep = evaluate([shuffle_pitches(p, rng) for p in melodic], melodic, tmp_path, plots=False, progress=False)
    assert rep["set_vs_set"]["melody.stepwise_ratio"]["oa_intra_ref_vs_inter"] < 0.3


def test_shipped_style_judge():
    from tatumflow.evaluation.style import load_default_judge

    judge = load_default_judge()
    assert judge is not None and judge.target == "Art Tatum"
    assert judge.info["test"]["roc_auc"] > 0.9
    s = judge.piece_scores([random_performance(np.random.default_rng(0), 400, span=60.0)])
    assert 0 <= s[0] <= 1


def test_style_judge_on_real_data(pijama_index):
    from tatumflow.evaluation.report import load_set
    from tatumflow.evaluation.style import load_default_judge

    judge = load_default_judge()
    tatum = load_set(pijama_index, name="t", where={"pianist": "Art Tatum", "split": "test"}, progress=False).perfs
    other = load_set(pijama_index, name="o", where={"split": "test"}, limit=40, progress=False).perfs
    other = [p for p in other if "Art Tatum" not in p.metadata["source"]]
    assert judge.piece_scores(tatum).mean() > 0.7 > 0.3 > judge.piece_scores(other).mean()


def test_token_bits_per_note_definition():
    from tatumflow import PerformanceTokenizer
    from tatumflow.evaluation import token_bits_per_note

    tok = PerformanceTokenizer()
    ids = tok.encode(Performance.from_arrays([0.0, 0.5], [0.4, 1.0], [60, 62], [80, 80]))[1:]
    # SOS excluded: VEL ON SHIFT OFF SHIFT VEL ON SHIFT OFF EOS -> timing tokens: 2 ON, 2 OFF, 3 SHIFT
    nll = np.full(len(ids), np.log(2.0))  # one bit per token
    r = token_bits_per_note(nll, ids, tok)
    assert r["notes"] == 2
    assert r["bits_per_note"] == pytest.approx(7 / 2) and r["velocity_bits_per_note"] == pytest.approx(1.0)
