"""The control track (``tatumflow.models.tatumflow.controls``): what the decoder is
told in training is what generation tells it, and it is read as the scorecard
reads music."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tatumflow.evaluation import controls as C
from tatumflow.features import chord_quality, chord_sequence
from tatumflow.models.tatumflow.controls import (ControlPlan, blend, chord_chroma, count_inputs, frame_table,
                                                tally_inputs, token_pitches)
from tatumflow.features.notes import noteset_from_performances
from tatumflow.models.tatumflow.generate import GenerationPipeline, _running
from tatumflow.models.tatumflow.model import PRESETS, TatumFlow, TatumFlowConfig
from tatumflow.errors import TatumFlowError
from tatumflow.performance import Performance
from tatumflow.pretrained import load_model


def _perf(seed=0, n=120, seconds=12.0):
    rng = np.random.default_rng(seed)
    on = np.sort(rng.uniform(0, seconds, n))
    return Performance.from_arrays(on, on + rng.uniform(0.05, 1.5, n), rng.integers(36, 96, n),
                                   rng.integers(20, 120, n))


def _model(**kw):
    return TatumFlow(TatumFlowConfig(**{**PRESETS["tiny"], "decoder_only": True, "control_track": True, **kw}))


def test_frames_are_read_as_the_scorecard_reads_music():
    """The chroma weighs notes as the chord reader does (velocity x duration in the
    frame, by onset); a frame of a chord's tones reads as that chord."""
    p = _perf()
    n = int(np.ceil(p.end))
    chroma, tex = frame_table(noteset_from_performances([p]), 1.0, n)
    ref = C.chroma_frames(p, n, hop=1.0)
    assert np.allclose(chroma[0], ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12))
    f = np.floor(p.notes["onset"]).astype(int)
    assert np.allclose(tex[0, :, 0], np.log1p(np.bincount(f, minlength=n)[:n]))  # density
    k = f == 3
    assert tex[0, 3, 1] == pytest.approx((p.notes["pitch"][k].mean() - 60) / 12)  # register
    assert tex[0, 3, 2] == pytest.approx((p.notes["velocity"][k].mean() - 64) / 32)  # loudness
    w = chord_chroma("Dm7")  # D F A C: root and seventh over the third, the third over the fifth
    assert w[2] == w[0] > w[5] > w[9] > 0 and w[[1, 3, 4, 6, 7, 8, 10, 11]].max() == 0
    for symbol in ("Dm7", "G7", "Cmaj7", "Am7b5", "Bbmaj7"):
        c = chord_chroma(symbol)
        pcs = np.flatnonzero(c)
        tones = Performance.from_arrays([0.0] * len(pcs), [0.5] * len(pcs), 48 + pcs, [80] * len(pcs))
        _, roots, quals = chord_sequence(tones)
        assert (int(roots[0]), quals[0]) == chord_quality(symbol), symbol


def test_training_controls_are_the_plan_generation_gives_at_each_token():
    """Each token's controls in training (read off the window's ids) equal the
    plan of the decoded music at the time after that token, as decoding asks."""
    m = _model().eval()
    pipe = GenerationPipeline(m)
    p = _perf(1, n=60, seconds=8.0)
    ids = pipe.tokens(p)[:200]
    c = m.controls_of(torch.tensor([ids]))
    perf = pipe.tok.decode(np.array(ids))
    plan = ControlPlan.of(perf, 1.0)
    want = plan.at(pipe.token_times(ids))
    for k in ("chroma", "texture"):
        assert np.allclose(c[k][0].numpy(), want[k], atol=1e-5), k
        assert c[k + "_known"].all() and want[k + "_known"].all()


def test_training_hides_controls_per_sample_and_per_frame():
    m = _model(control_dropout=0.5)
    ids = torch.tensor([GenerationPipeline(m).tokens(_perf(s, 60, 8.0))[:128] for s in range(32)])
    m.train()  # (the pipeline puts its model in eval mode)
    torch.manual_seed(0)
    c = m._drop_controls(m.controls_of(ids))
    for k in ("chroma_known", "texture_known"):
        hidden = (~c[k]).float().mean(1)
        assert (hidden == 1).float().mean() > 0.3 and ((hidden < 1) & (hidden > 0)).float().mean() > 0.2, k
    assert not torch.equal(c["chroma_known"], c["texture_known"])  # hidden apart
    m.eval()
    c = m._drop_controls(m.controls_of(ids))
    assert c["chroma_known"].all() and c["texture_known"].all()


def test_the_control_track_starts_silent_and_changes_the_logits_once_trained():
    m = _model().eval()
    ids = torch.tensor([GenerationPipeline(m).tokens(_perf(2, 60, 8.0))[:64]])
    plain = m.decode_logits(ids, None, None, controls=None)
    told = m.decode_logits(ids, None, None, controls=m.controls_of(ids))
    assert torch.allclose(plain, told)  # zero-initialised: a plain model fine-tuned with it starts unchanged
    torch.nn.init.normal_(m.chroma_in.weight, std=0.1)
    assert not torch.allclose(plain, m.decode_logits(ids, None, None, controls=m.controls_of(ids)))


def test_plans_edit_blend_and_reject_bad_configs():
    a, b = ControlPlan.of(_perf(3), 1.0), ControlPlan.of(_perf(4, seconds=6.0), 1.0)
    n = b.n_frames
    assert n < a.n_frames
    e = a.with_chords(["Dm7", "G7"], duration=a.n_frames)
    assert np.allclose(e.chroma[: a.n_frames // 2], chord_chroma("Dm7")) and np.allclose(e.chroma[-1], chord_chroma("G7"))
    assert np.array_equal(e.texture, a.texture)
    h = blend(a, b, 0.5)
    assert h.n_frames == b.n_frames and np.allclose(h.texture, (a.texture[:n] + b.texture) / 2)
    past = a.at([a.n_frames + 3.0])
    assert not past["chroma_known"][0] and not past["texture_known"][0]  # past the plan: nothing given
    with pytest.raises(TatumFlowError, match="decoder_only"):
        TatumFlowConfig(**PRESETS["tiny"], control_track=True)
    with pytest.raises(TatumFlowError, match="control_frame"):
        _model(control_frame=0.0)


def test_a_control_track_run_starts_from_a_plain_decoder(tmp_path):
    """``finetune.base`` may be a plain decoder: the control track is new (starting
    silent), the rest is the base's; a base of another shape is still refused."""
    from tatumflow.training.config import ConfigError
    from tatumflow.training.checkpoint import model_state, save_checkpoint
    from tatumflow.training.run import _prepare_finetune

    torch.manual_seed(1)
    base = TatumFlow(TatumFlowConfig(**{**PRESETS["tiny"], "decoder_only": True}))
    ck = save_checkpoint(tmp_path / "base", model_state=base.state_dict(), state={**model_state(base), "run_info": {}})
    m = _model(token_dropout=0.2)
    _prepare_finetune(m, {"base": str(ck)})
    assert torch.equal(m.embed.weight, base.embed.weight)
    assert all(torch.equal(a, b) for a, b in zip(m.decoder.parameters(), base.decoder.parameters()))
    assert not m.chroma_out.weight.any() and not m.chroma_in.weight.any()
    with pytest.raises(ConfigError, match="not this run's model"):
        _prepare_finetune(_model(d_model=64), {"base": str(ck)})


def test_the_pianist_control_is_told_per_window_starts_silent_and_is_hidden_at_random():
    """A window's pianist (a class: a named pianist, any other, or unknown) reaches
    every token; zero-initialised, it changes nothing until trained; training hides
    it per sample, never within one."""
    m = _model(pianists=("A",)).eval()
    ids = torch.tensor([GenerationPipeline(m).tokens(_perf(2, 60, 8.0))[:64]] * 3)
    c = {**m.controls_of(ids), **m.pianist_controls(torch.tensor([0, 1, -1]), ids.shape[1])}
    assert c["pianist"].shape == (3, 64, 2) and c["pianist"][0, :, 0].all() and c["pianist"][1, :, 1].all()
    assert c["pianist_known"][:2].all() and not c["pianist_known"][2].any()
    plain = m.decode_logits(ids, None, None, controls=m.controls_of(ids))
    assert torch.allclose(plain, m.decode_logits(ids, None, None, controls=c))
    torch.nn.init.normal_(m.pianist_out.weight, std=0.1)
    told = m.decode_logits(ids, None, None, controls=c)
    assert not torch.allclose(told[0], told[1])  # A and another pianist differ
    assert torch.allclose(told[2], plain[2])  # unknown: the pianist's logit path is silent
    m.train()
    big = m.pianist_controls(torch.zeros(64, dtype=torch.long), 10)
    dropped = m._drop_controls({**big, "frame": torch.zeros(64, 10, dtype=torch.long),
                                **{k: torch.ones(64, 10, dtype=torch.bool) for k in ("chroma_known", "texture_known")}})
    rows = dropped["pianist_known"]
    assert (rows == rows[:, :1]).all() and 0 < int(rows[:, 0].sum()) < 64
    with pytest.raises(TatumFlowError, match="control_track"):
        TatumFlowConfig(**{**PRESETS["tiny"], "decoder_only": True, "pianists": ("A",)})
    with pytest.raises(TatumFlowError, match="twice"):
        _model(pianists=("A", "A"))


def test_plans_carry_and_blend_the_pianist():
    m = _model(pianists=("A", "B"))
    pipe = GenerationPipeline(m)
    assert pipe.pianist == "A"
    assert pipe.pianist_weights("B").tolist() == [0, 1, 0] and pipe.pianist_weights("Z").tolist() == [0, 0, 1]
    a, b = pipe.plan_of(_perf(3)), pipe.plan_of(_perf(4))
    a.pianist, b.pianist = pipe.pianist_weights("A"), pipe.pianist_weights(None)
    h = blend(a, b, 0.25)
    assert np.allclose(h.pianist, [0.75, 0, 0.25]) and np.allclose(h.copy().pianist, h.pianist)
    told = ControlPlan.empty(1.0, h.pianist).at([0.0, 30.0])
    assert told["pianist_known"].all() and np.allclose(told["pianist"], h.pianist)
    assert not told["chroma_known"].any() and not told["texture_known"].any()
    assert "pianist" not in ControlPlan.of(_perf(3), 1.0).at([0.0])  # not told: no pianist
    with pytest.raises(TatumFlowError, match="no pianist control"):
        GenerationPipeline(_model()).pianist_weights("A")
    with pytest.raises(TatumFlowError, match="two names"):
        pipe.interpolate(_perf(3), _perf(4), (0.0, 1.0), 2.0, pianists=("A",))


def test_count_inputs_say_what_each_frame_still_needs():
    """Per token: log(1 + onsets the frame still needs), done once it has them (a
    frame asking 2.4 is done at 2), the share of the frame gone; a new frame starts
    the count again."""
    sec = np.array([0.0, 0.1, 0.1, 0.5, 0.5, 0.9, 1.2, 1.2, 1.3])
    on = np.where(np.array([0, 0, 1, 0, 1, 0, 0, 1, 1], bool), 60, -1)
    asked = np.array([2.4] * 6 + [1.0] * 3)
    c = count_inputs(sec, on, asked, 1.0)
    left = [2.4, 2.4, 1.4, 1.4, 0.4, 0.4, 1.0, 0.0, 0.0]  # the last onset overshoots: left stays 0
    assert np.allclose(c[:, 0], np.log1p(left))
    assert c[:, 1].tolist() == [0, 0, 0, 0, 1, 1, 0, 1, 1]
    assert np.allclose(c[:, 2], [0.0, 0.1, 0.1, 0.5, 0.5, 0.9, 0.2, 0.2, 0.3])
    batch = count_inputs(np.stack([sec, sec]), np.stack([on, on]), np.stack([asked, asked]), 1.0)
    assert np.allclose(batch[1], c)  # rows apart


def test_a_flat_plan_asks_for_what_such_music_is_read_as():
    """``ControlPlan.flat`` in a listener's units is the plan of music that plays them:
    4 onsets a second in 2-note clusters around pitch 62 at velocity 80."""
    on = np.repeat(np.arange(0, 3, 0.5), 2)
    p = Performance.from_arrays(on, on + 0.3, np.tile([60, 64], 6), np.full(12, 80))
    want = ControlPlan.flat(3.0, density=4, register=62, loudness=80, voicing=2)
    assert want.n_frames == 3 and not want.chroma_known.any() and want.texture_known.all()
    assert np.allclose(want.texture, ControlPlan.of(p, 1.0, 3).texture)
    for bad in ({"density": -1}, {"density": 4, "voicing": 0.5}):
        with pytest.raises(TatumFlowError, match=next(iter(bad)) if len(bad) == 1 else "voicing"):
            ControlPlan.flat(3.0, **bad)


def test_tally_inputs_say_what_each_frame_still_needs_of_its_voicing_and_register():
    """Per token: log(1 + clusters the frame still needs to begin) (its onsets over its
    voicing size), log(1 + notes of the cluster sounding now) (0 once time has moved on),
    and the register the frame's remaining onsets need for the mean it asks (its own
    once it has its onsets); an onset in the same 50 ms as the one before joins its
    cluster, across a frame's edge too."""
    sec = np.array([0.0, 0.1, 0.1, 0.1, 0.3, 0.3, 0.95, 0.99, 1.01, 1.3, 1.3])
    pitch = np.array([-1, 60, 64, -1, 72, -1, -1, 48, 50, -1, 52])
    # frame 0 asks 4 onsets in 2 clusters (voicing 2), mean pitch 62; frame 1 asks 2 in 1, mean 51
    tex = np.array([[np.log1p(4), 2 / 12, 0.0, np.log(2.0)]] * 8 + [[np.log1p(2), -9 / 12, 0.0, np.log(2.0)]] * 3)
    t = tally_inputs(sec, pitch, tex, 1.0)
    assert np.allclose(np.expm1(t[:, 0]), [2, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0])  # 1.01 joins 0.99's cluster
    assert np.allclose(np.expm1(t[:, 1]), [0, 1, 2, 2, 1, 1, 0, 1, 2, 0, 1])
    need = [62, (248 - 60) / 3, (248 - 124) / 2, (248 - 124) / 2, 248 - 196, 248 - 196, 248 - 196, 62, 52, 52, 51]
    assert np.allclose(t[:, 2], (np.array(need) - 60) / 12)
    batch = tally_inputs(np.stack([sec, sec]), np.stack([pitch, pitch]), np.stack([tex, tex]), 1.0)
    assert np.allclose(batch[1], t)  # rows apart
    # decoding keeps the tokens of the frame and the cluster sounding before it: what it
    # tells the last token is what the whole music tells it
    plan = ControlPlan(1.0, np.zeros((2, 12)), np.ones(2, bool), tex[[0, -1]], np.ones(2, bool))
    for end in range(1, len(sec) + 1):
        kept = _running(sec[:end], pitch[:end], 1.0)
        assert len(kept[0]) <= end
        for k in ("count", "tally"):
            assert np.allclose(plan.at(*kept)[k][-1], plan.at(sec[:end], pitch[:end])[k][-1]), (end, k)


def test_the_count_and_tally_controls_are_what_decoding_tells_and_are_hidden_with_the_texture():
    """Training's count and tally (read off the window) are the plan's at each token;
    generation's running ones, token by token, are those of what it wrote; each starts
    silent and is hidden wherever the texture is."""
    m = _model(control_count=True, control_tally=True, pianists=("A",)).eval()
    pipe = GenerationPipeline(m)
    p = _perf(1, n=60, seconds=8.0)
    ids = pipe.tokens(p)[:200]
    c = m.controls_of(torch.tensor([ids]))
    plan = ControlPlan.of(pipe.tok.decode(np.array(ids)), 1.0)
    want = plan.at(pipe.token_times(ids), token_pitches(np.array(ids), pipe.tok))
    x = torch.tensor([ids])
    assert torch.allclose(m.decode_logits(x, None, None, controls=None), m.decode_logits(x, None, None, controls=c))
    for name in ("count", "tally"):
        assert np.allclose(c[name][0].numpy(), want[name], atol=1e-5), name
        torch.nn.init.normal_(getattr(m, name + "_out").weight, std=0.1)
        torch.nn.init.normal_(getattr(m, name + "_in").weight, std=0.1)
        told = m.decode_logits(x, None, None, controls=c)
        assert not torch.allclose(told, m.decode_logits(x, None, None, controls={**c, name: c[name] * 0})), name
        hidden = {**c, "texture_known": torch.zeros_like(c["texture_known"])}
        assert torch.allclose(m.decode_logits(x, None, None, controls=hidden),
                              m.decode_logits(x, None, None, controls={**hidden, name: c[name] * 0})), name
    # decoding's running state: on the pianist fixture (which writes notes) given both controls
    fix, _ = load_model(Path(__file__).resolve().parents[1] / "fixtures" / "tatumflow_pianist_control")
    m = TatumFlow(dataclasses.replace(fix.config, control_count=True, control_tally=True))
    m.load_state_dict(fix.state_dict(), strict=False)
    pipe, seen = GenerationPipeline(m), []
    real = m.decode_logits

    def spy(ids, *a, controls=None, **k):  # the tokens decoded and what each is told (row 0: the whole plan)
        seen.append((ids[0].tolist(), {n: controls[n][0].numpy().copy() for n in ("count", "tally")}))
        return real(ids, *a, controls=controls, **k)

    m.decode_logits = spy
    plan = pipe.plan_of(p, 8.0)
    ids = pipe.write_plan(plan, 12.0, seed=0).ids.tolist()  # past one window (128 tokens)
    pitches = token_pitches(np.array(ids), pipe.tok)
    want = plan.at(pipe.token_times(ids), pitches)
    at, windows = 0, 0  # where in ``ids`` the tokens of each call end
    for toks, told in seen:
        if len(toks) > 1 or at == 0:  # a window's context: the last tokens written (and released) so far
            at = next(e for e in range(max(at, len(toks)), len(ids) + 1) if ids[e - len(toks):e] == toks)
            windows += 1
        else:
            assert ids[at] == toks[0]
            at += 1
        for name in ("count", "tally"):
            assert np.allclose(told[name], want[name][at - len(toks):at], atol=1e-6), name
    assert windows > 1 and (pitches >= 0).sum() > 40 and want["count"][:, 1].any() and not want["count"][:, 1].all()
    assert (want["tally"][:, 1] > np.log(2.5)).any()  # chords of two notes and more were written
    for name in ("control_count", "control_tally"):
        with pytest.raises(TatumFlowError, match="control_track"):
            TatumFlowConfig(**{**PRESETS["tiny"], "decoder_only": True, name: True})
