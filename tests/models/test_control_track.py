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
from tatumflow.models.tatumflow.controls import ControlPlan, blend, chord_chroma, count_inputs, frame_table
from tatumflow.features.notes import noteset_from_performances
from tatumflow.models.tatumflow.generate import GenerationPipeline
from tatumflow.models.tatumflow.model import PRESETS, TatumFlow, TatumFlowConfig
from tatumflow.errors import TatumFlowError
from tatumflow.performance import Performance
from tatumflow.pretrained import load_model
from tatumflow.tokenizer.vocab import NOTE_ON


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
    on = np.array([0, 0, 1, 0, 1, 0, 0, 1, 1], bool)
    asked = np.array([2.4] * 6 + [1.0] * 3)
    c = count_inputs(sec, on, asked, 1.0)
    left = [2.4, 2.4, 1.4, 1.4, 0.4, 0.4, 1.0, 0.0, 0.0]  # the last onset overshoots: left stays 0
    assert np.allclose(c[:, 0], np.log1p(left))
    assert c[:, 1].tolist() == [0, 0, 0, 0, 1, 1, 0, 1, 1]
    assert np.allclose(c[:, 2], [0.0, 0.1, 0.1, 0.5, 0.5, 0.9, 0.2, 0.2, 0.3])
    batch = count_inputs(np.stack([sec, sec]), np.stack([on, on]), np.stack([asked, asked]), 1.0)
    assert np.allclose(batch[1], c)  # rows apart


def test_the_count_control_is_what_decoding_tells_and_is_hidden_with_the_texture():
    """Training's count (read off the window) is the plan's count at each token;
    generation's running count, token by token, is the count of what it wrote; the
    count starts silent and is hidden wherever the texture is."""
    m = _model(control_count=True, pianists=("A",)).eval()
    pipe = GenerationPipeline(m)
    p = _perf(1, n=60, seconds=8.0)
    ids = pipe.tokens(p)[:200]
    c = m.controls_of(torch.tensor([ids]))
    plan = ControlPlan.of(pipe.tok.decode(np.array(ids)), 1.0)
    want = plan.at(pipe.token_times(ids), pipe.tok.vocab.type_of[np.array(ids)] == NOTE_ON)
    assert np.allclose(c["count"][0].numpy(), want["count"], atol=1e-5)
    x = torch.tensor([ids])
    assert torch.allclose(m.decode_logits(x, None, None, controls=None), m.decode_logits(x, None, None, controls=c))
    torch.nn.init.normal_(m.count_out.weight, std=0.1)
    torch.nn.init.normal_(m.count_in.weight, std=0.1)
    told = m.decode_logits(x, None, None, controls=c)
    assert not torch.allclose(told, m.decode_logits(x, None, None, controls={**c, "count": c["count"] * 0}))
    hidden = {**c, "texture_known": torch.zeros_like(c["texture_known"])}
    assert torch.allclose(m.decode_logits(x, None, None, controls=hidden),
                          m.decode_logits(x, None, None, controls={**hidden, "count": c["count"] * 0}))
    # decoding's running count: on the pianist fixture (which writes notes) given the count control
    fix, _ = load_model(Path(__file__).resolve().parents[1] / "fixtures" / "tatumflow_pianist_control")
    m = TatumFlow(dataclasses.replace(fix.config, control_count=True))
    m.load_state_dict(fix.state_dict(), strict=False)
    pipe, seen = GenerationPipeline(m), []
    real = m.decode_logits

    def spy(ids, *a, controls=None, **k):  # the tokens decoded and the count each is told (row 0: the whole plan)
        seen.append((ids[0].tolist(), controls["count"][0].numpy().copy()))
        return real(ids, *a, controls=controls, **k)

    m.decode_logits = spy
    plan = pipe.plan_of(p, 8.0)
    ids = pipe.write_plan(plan, 12.0, seed=0).ids.tolist()  # past one window (128 tokens)
    onsets = pipe.tok.vocab.type_of[np.array(ids)] == NOTE_ON
    want = plan.at(pipe.token_times(ids), onsets)["count"]
    at, windows = 0, 0  # where in ``ids`` the tokens of each call end
    for toks, count in seen:
        if len(toks) > 1 or at == 0:  # a window's context: the last tokens written (and released) so far
            at = next(e for e in range(max(at, len(toks)), len(ids) + 1) if ids[e - len(toks):e] == toks)
            windows += 1
        else:
            assert ids[at] == toks[0]
            at += 1
        assert np.allclose(count, want[at - len(toks):at], atol=1e-6)
    assert windows > 1 and onsets.sum() > 40 and want[:, 1].any() and not want[:, 1].all()
    with pytest.raises(TatumFlowError, match="control_track"):
        TatumFlowConfig(**{**PRESETS["tiny"], "decoder_only": True, "control_count": True})
