"""TatumFlow: building blocks, the model, presets, training, and every generation mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import random_performance
from tatumflow.errors import TatumFlowError
from tatumflow.generation.constrained import GrammarState, filter_logits
from tatumflow.features.chords import parse_chord, parse_progression
from tatumflow.models.tatumflow.generate import MODES, GenerationPipeline, Sampling
from tatumflow.models.tatumflow.model import PRESETS, TatumFlow, orthogonality_loss, preset
from tatumflow.nn import CausalDecoderBlock, DiTBlock, KVCache, MultiScaleAttention
from tatumflow.performance import Performance
from tatumflow.tokenizer import PerformanceTokenizer

TOK = PerformanceTokenizer()


def tiny(**kw) -> TatumFlow:
    torch.manual_seed(0)
    return TatumFlow(preset("tiny", vocab_size=TOK.vocab_size, tokenizer=TOK.config.to_dict(), **kw))


def test_preset_sizes_match_the_seed_table():
    expected = {"small": 45e6, "base": 110e6, "large": 350e6}
    for name, target in expected.items():
        with torch.device("meta"):  # count without allocating
            m = TatumFlow(preset(name, vocab_size=TOK.vocab_size))
        n = sum(p.numel() for p in m.parameters())
        assert abs(n - target) / target < 0.15, (name, n)
        del m
    assert set(PRESETS) == {"tiny", "small", "base", "large"}


def test_multiscale_attention_respects_padding_and_dit_starts_as_identity():
    torch.manual_seed(0)
    att = MultiScaleAttention(32, 4, (1, 2, 4)).eval()
    x = torch.randn(2, 12, 32)
    keep = torch.ones(2, 12, dtype=torch.bool)
    keep[1, 8:] = False
    y = att(x, keep)
    x2 = x.clone()
    x2[1, 8:] = 100.0  # padding content must not matter ...
    assert torch.allclose(att(x2, keep)[1, :8], y[1, :8], atol=1e-5)
    x3 = x.clone()
    x3[0, 11] += 1.0  # ... but real content anywhere does (bidirectional, all scales)
    assert not torch.allclose(att(x3, keep)[0, :4], y[0, :4])
    blk = DiTBlock(32, 4, 16)
    assert torch.equal(blk(x, torch.randn(2, 16), keep), x)  # AdaLN-Zero: gates start closed


def test_causal_decoder_kv_cache_equals_full_pass():
    torch.manual_seed(0)
    blocks = [CausalDecoderBlock(32, 4).eval() for _ in range(2)]
    x, mem = torch.randn(1, 10, 32), torch.randn(1, 5, 32)

    def run(inp, cache=None):
        for i, b in enumerate(blocks):
            inp = b(inp, mem, None, cache, i)
        return inp

    full = run(x)
    cache = KVCache()
    steps = [run(x[:, :4], cache)] + [run(x[:, j : j + 1], cache) for j in range(4, 10)]
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5) and len(cache) == 10
    x2 = x.clone()
    x2[:, 7:] += 5.0  # the future does not change the past
    assert torch.allclose(run(x2)[:, :7], full[:, :7], atol=1e-5)


def test_orthogonality_loss():
    torch.manual_seed(0)
    a = torch.randn(4000, 8)
    assert orthogonality_loss([a, torch.randn(4000, 4)]) < 0.01
    assert orthogonality_loss([a, a[:, :4] * 3 + 1]) > 0.1


def _batch(n=4, L=128):
    rng = np.random.default_rng(0)
    ids = np.full((n, L), TOK.vocab.pad_id)
    for i in range(n):
        t = TOK.encode(random_performance(rng, 80, span=15), sos=True, eos=False)[:L]
        ids[i, : len(t)] = t
    ids = torch.as_tensor(ids)
    return {"input_ids": ids, "attention_mask": ids != TOK.vocab.pad_id}


def test_tiny_model_learns_one_batch():
    m = tiny(seq_len=128, dropout=0.0)
    b = _batch()
    opt = torch.optim.AdamW(m.parameters(), 2e-3)
    first = None
    for _ in range(60):
        out = m.training_step(b)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        first = first or out.metrics
    last = m.training_step(b).metrics
    assert last["recon"] < 0.8 * first["recon"], (first, last)
    assert last["diffusion"] < first["diffusion"]
    for k in ("recon", "diffusion", "kl", "orth", "latent_kl"):
        assert np.isfinite(last[k])
    v = m.validation_step(b)
    assert np.isclose(v.metrics["bits_per_token"], v.metrics["recon"] / np.log(2))


def test_theory_encoder_reads_the_music():
    m = tiny(seq_len=128)
    b = _batch(2)
    raw = m.theory.raw(b["input_ids"])
    assert [r.shape[:2] for r in raw] == [(2, 8)] * 4
    assert all(r.abs().sum() > 0 for r in raw)  # real features, not constants
    assert not torch.allclose(raw[0][0], raw[0][1])


@pytest.mark.parametrize("release", ["note_off", "duration"])
def test_grammar_state_reads_prompts_as_the_decoder_does(release):
    from tatumflow.tokenizer import TokenizerConfig

    tok = PerformanceTokenizer(TokenizerConfig(release=release))
    full = tok.encode(random_performance(np.random.default_rng(1), 60), sos=False, eos=False)
    for cut in (37, 38, 120, 200):  # mid-note, mid-chord, and later prefixes
        ids = torch.as_tensor(full[:cut])[None]
        a, b = GrammarState(tok, 1), GrammarState(tok, 1)
        a.feed(ids)
        for j in range(ids.shape[1]):
            b.update(ids[:, j])
        for k in ("sounding", "time", "pedal", "last_on", "prev"):
            assert torch.equal(getattr(a, k), getattr(b, k)), (release, cut, k)
        assert torch.equal(a.on_time[a.sounding], b.on_time[b.sounding]) and torch.equal(a.end[a.sounding],
                                                                                           b.end[b.sounding])
        ends = tok.decode(full[:cut]).notes  # what the decoder lets sound past the prompt's end
        live = {int(p) for p, off in zip(ends["pitch"], ends["offset"]) if off > a.time.item() * 0.01 + 1e-9}
        assert live <= {int(p) + tok.config.pitch_min for p in torch.nonzero(a.sounding[0]).flatten()}
        closed = full[:cut].tolist() + a.finish()[0]
        assert tok.grammar_errors(np.array(closed)) == 0, (release, cut)
    with pytest.raises(ValueError, match="fresh"):
        a.feed(ids)


def test_grammar_state_and_filters():
    x = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filter_logits(x, top_k=2)[0, 2:]).all()
    assert torch.isfinite(filter_logits(x, top_p=0.5)[0, 0]) and torch.isinf(filter_logits(x, top_p=0.5)[0, 1:]).all()
    assert torch.isinf(filter_logits(x, min_p=0.2)[0, 3])


def test_chord_parser():
    assert parse_chord("Dm7") == (2, (0, 3, 7, 10)) and parse_chord("Bb7")[0] == 10 and parse_chord("F#m7b5")[0] == 6
    assert len(parse_progression("Dm7 G7 | Cmaj7, Cmaj7")) == 4
    with pytest.raises(TatumFlowError, match="H7"):
        parse_chord("H7")


def test_every_mode_is_grammatical_and_deterministic():
    pipe = GenerationPipeline(tiny().eval())
    rng = np.random.default_rng(2)
    p1, p2 = random_performance(rng, 60, span=8), random_performance(rng, 60, span=8)
    s = Sampling(steps=5, temperature=1.5)
    runs = {
        "unconditional": lambda: [pipe.unconditional(3.0, seed=1, sampling=s)],
        "continuation": lambda: [pipe.continuation(p1, 3.0, seed=1, sampling=s)],
        "style-transfer": lambda: [pipe.style_transfer(p1, p2, 0.5, seed=1, sampling=s)],
        "improvise": lambda: pipe.improvise(p1, 0.7, 2, seed=1, sampling=s),
        "edit-harmony": lambda: [pipe.edit_harmony(p1, "Dm7 G7 Cmaj7", seed=1, sampling=s)],
        "interpolate": lambda: pipe.interpolate(p1, p2, (0.0, 1.0), 3.0, seed=1, sampling=s),
    }
    assert set(runs) == set(MODES)
    total = 0
    for mode, run in runs.items():
        a, b = run(), run()
        for x, y in zip(a, b):
            assert x.grammar_errors == 0, mode
            assert np.array_equal(x.ids, y.ids), mode
            total += len(x.ids)
    assert total > 300  # they wrote music, not just markers
    cont = pipe.continuation(p1, 3.0, seed=1, sampling=s)
    assert cont.ids[: cont.info["prompt_tokens"]].tolist() == pipe.tokens(p1)  # the prompt is kept as is
    s_nc = Sampling(steps=5, temperature=1.5, use_cache=False)
    assert np.array_equal(pipe.continuation(p1, 3.0, seed=1, sampling=s_nc).ids, cont.ids)  # cache: same tokens


def test_cli_generate_every_mode(tmp_path, capsys):
    from tatumflow.cli.main import main
    from tatumflow.midi import write_midi
    from tatumflow.training.checkpoint import model_state, save_checkpoint

    m = tiny()
    ck = save_checkpoint(tmp_path / "ck", model_state=m.state_dict(), state={**model_state(m), "run_info": {}})
    rng = np.random.default_rng(4)
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    write_midi(random_performance(rng, 50, span=6), a)
    write_midi(random_performance(rng, 50, span=6), b)
    common = ["generate", "--checkpoint", str(ck), "--prompt", str(a), "--style", str(b), "--chords", "Dm7 G7",
              "--seconds", "2", "--steps", "4", "--variations", "2", "--alphas", "0,1", "--device", "cpu"]
    for mode in MODES:
        assert main(common + ["--mode", mode, "--out", str(tmp_path / f"{mode}.mid")]) == 0
    out = capsys.readouterr().out
    assert out.count("0 grammar errors") == 8  # 1 + 1 + 1 + 2 variations + 1 + 2 alphas
    assert (tmp_path / "improvise_v1.mid").is_file() and (tmp_path / "interpolate_a1.00.mid").is_file()
    assert main(["generate", "--checkpoint", str(ck), "--mode", "edit-harmony", "--prompt", str(a),
                 "--out", str(tmp_path / "x.mid")]) == 2  # no --chords: a clear error
    assert "--chords" in capsys.readouterr().err


def test_continuation_likelihood_does_not_look_ahead():
    pipe = GenerationPipeline(tiny(seq_len=128).eval())
    b = _batch(2, 128)["input_ids"]
    changed = b.clone()
    changed[:, 120:] = TOK.vocab.shift.start + 3  # alter the last tokens only
    s = Sampling(steps=4)
    n1, t1 = pipe.continuation_nll(b, 64, sampling=s, seed=3)
    n2, t2 = pipe.continuation_nll(changed, 64, sampling=s, seed=3)
    assert len(t1) == int((b[:, 64:] != TOK.vocab.pad_id).sum())  # every scored, non-PAD token
    c0 = int((b[0, 64:] != TOK.vocab.pad_id).sum())  # scored tokens of row 0 (row 1 follows)
    k = (b[:, 64:120] != TOK.vocab.pad_id).sum(1).tolist()  # scored tokens before the change, per row
    before1 = torch.cat([n1[:k[0]], n1[c0: c0 + k[1]]])
    before2 = torch.cat([n2[:k[0]], n2[c0: c0 + k[1]]])
    assert torch.allclose(before1, before2)  # the prior's latents never saw the later tokens
    p1, _ = pipe.continuation_nll(b, 64, posterior=True)
    p2, _ = pipe.continuation_nll(changed, 64, posterior=True)
    assert not torch.allclose(p1[:k[0]], p2[:k[0]])  # the window's own latents do (reconstruction)
    with pytest.raises(TatumFlowError, match="multiple of the span"):
        pipe.continuation_nll(b, 60)


def test_write_every_mode(tmp_path):
    from tatumflow.models.tatumflow.generate import write_every_mode

    pipe = GenerationPipeline(tiny().eval())
    rng = np.random.default_rng(5)
    w = write_every_mode(pipe, random_performance(rng, 40, span=5), random_performance(rng, 40, span=5), tmp_path,
                         seconds=2.0, sampling=Sampling(steps=4), echo=lambda s: None)
    assert list(w) == list(MODES) and sum(len(v) for v in w.values()) == 9
    for mode, outs in w.items():
        for path, r, _ in outs:
            assert path.is_file() and path.with_suffix(".png").is_file() and r.grammar_errors == 0, mode


def test_polyphony_and_note_length_limits():
    state = GrammarState(TOK, 1, max_polyphony=2, max_note_steps=50)
    v = TOK.vocab
    vel = v.velocity.start + 10
    for p in (60, 64):
        state.update(torch.tensor([vel]))
        state.update(torch.tensor([v.note_on.start + p - TOK.config.pitch_min]))
    m = state.mask()[0]
    assert not m[v.velocity.start: v.velocity.stop].any() and not m[v.note_on.start: v.note_on.stop].any()
    state.update(torch.tensor([v.shift.start + 49]))  # 50 steps later: both notes must be released now
    m = state.mask()[0]
    assert m.sum() == 2 and m[v.note_off.start + 60 - TOK.config.pitch_min] and m[v.note_off.start + 64 - TOK.config.pitch_min]
    pipe = GenerationPipeline(tiny().eval())
    r = pipe.unconditional(3.0, seed=2, sampling=Sampling(steps=4, temperature=1.5, max_polyphony=3,
                                                          max_note_seconds=0.5))
    perf = r.performance
    assert r.grammar_errors == 0 and len(perf) > 0
    assert (perf.notes["offset"] - perf.notes["onset"]).max() <= 0.5 + 1e-6
    on, off = perf.notes["onset"], perf.notes["offset"]
    assert max(((on <= t) & (off > t)).sum() for t in on) <= 3


def test_transforming_modes_cover_the_whole_piece():
    pipe = GenerationPipeline(tiny(seq_len=64).eval())
    rng = np.random.default_rng(6)
    piece, other = random_performance(rng, 120, span=20), random_performance(rng, 40, span=5)
    wins = pipe.windows(piece)
    assert len(wins) > 3 and wins[0][0] == 0.0 and np.isclose(wins[-1][1], piece.end)
    assert all(np.isclose(a[1], b[0]) for a, b in zip(wins, wins[1:]))  # end to end, no gaps
    assert all(len(pipe.tokens(piece.slice(a, b))) < 64 for a, b in wins if len(piece.slice(a, b)))
    s = Sampling(steps=4, temperature=1.5)
    for r in [pipe.style_transfer(piece, other, 0.5, seed=1, sampling=s),
              pipe.edit_harmony(piece, "Dm7 G7 Cmaj7 A7 Dm7 G7", seed=1, sampling=s),
              *pipe.improvise(piece, 0.5, 1, seed=1, sampling=s)]:
        assert r.grammar_errors == 0 and r.info["windows"] == len(wins)
        silent = sum(b - a for a, b in wins if len(piece.slice(a, b)) == 0)
        assert r.info["seconds_covered"] >= piece.end - silent - 0.05 * len(wins)  # every window rewritten
        assert r.performance.end <= piece.end + 1e-6


def test_gradient_checkpointing_same_loss_and_gradients_less_activation_memory():
    torch.manual_seed(0)
    model = tiny(dropout=0.1).train()
    batch = _batch(4, 256)

    def run(on: bool):
        model.set_gradient_checkpointing(on)
        model.zero_grad()
        saved = []  # bytes of every tensor kept for the backward pass (activation memory)

        def pack(t):
            saved.append(t.numel() * t.element_size())
            return t

        torch.manual_seed(1)  # the same dropout masks and noise in both runs
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model.training_step(batch).loss
        loss.backward()
        return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, sum(saved)

    l0, g0, m0 = run(False)
    l1, g1, m1 = run(True)
    assert l0 == pytest.approx(l1, abs=1e-6) and g0.keys() == g1.keys()
    assert all(torch.allclose(g0[k], g1[k], atol=1e-5) for k in g0)
    assert m1 < 0.8 * m0, (m0, m1)


def test_trainer_turns_gradient_checkpointing_on(tmp_path):
    from tatumflow.training import ConfigError, TrainConfig, Trainer

    c = TrainConfig(max_steps=1, gradient_checkpointing=True, tensorboard=False, device="cpu")
    m = tiny()
    Trainer(m, c, [_batch(1, 256)], out_dir=tmp_path, progress=False)
    assert m.gradient_checkpointing
    from tatumflow.models.music_rnn import MusicRNN, MusicRNNConfig

    with pytest.raises(ConfigError, match="gradient checkpointing"):
        Trainer(MusicRNN(MusicRNNConfig()), c, [_batch(1, 256)], out_dir=tmp_path, progress=False)


def test_chord_symbols_reduce_to_the_analysed_qualities():
    from tatumflow.features import CHORD_QUALITIES, CHORD_SYMBOLS, chord_quality

    assert chord_quality("Dm9") == (2, "m7") and chord_quality("G7/B") == (7, "7") and chord_quality("Eb") == (3, "maj")
    for spelling, (intervals, quality) in CHORD_SYMBOLS.items():
        assert set(CHORD_QUALITIES[quality]) <= set(i % 12 for i in intervals) | {0}, spelling


def test_constrained_sampling_is_grammatical_in_both_release_modes():
    from tatumflow.generation.constrained import sample_next
    from tatumflow.tokenizer import TokenizerConfig

    for release in ("note_off", "duration"):
        tok = PerformanceTokenizer(TokenizerConfig(release=release))
        v = tok.vocab
        st, gen = GrammarState(tok, 3, max_polyphony=6), torch.Generator().manual_seed(0)
        logits = torch.zeros(3, v.size)
        logits[:, v.shift.start: v.shift.stop] = -4.0  # favour notes over long silences ...
        if v.duration is not None:
            logits[:, v.duration.start: v.duration.stop] = -6.0  # ... and over ever longer notes
        rows = [[] for _ in range(3)]
        for _ in range(400):
            t = sample_next(logits, st.mask(), gen)
            st.update(t)
            for r, i in zip(rows, t.tolist()):
                r.append(i)
        for r, tail in zip(rows, st.finish()):
            ids = np.array(r + tail)
            assert tok.grammar_errors(ids) == 0, release
            assert len(tok.decode(ids)) > 30, release


def test_sampled_latents_stay_on_the_latent_scale():
    """The encoder's latent means are layer-normed (std 1 per span); sampling must
    land there too. Without projecting each step's x0 estimate, DDIM from the cosine
    schedule's noisiest step gave std ~300 on a trained fixture and ~1e3 on a fresh one."""
    from pathlib import Path

    from tatumflow.pretrained import load_model

    for model in (tiny().eval(), load_model(Path(__file__).resolve().parents[1] / "fixtures" / "tatumflow_v1")[0]):
        pipe = GenerationPipeline(model)
        for sampler in ("ddim", "ddpm"):
            z = pipe.sample_latents(None, Sampling(steps=20, sampler=sampler), torch.Generator().manual_seed(0))
            assert 0.9 < float(z.std()) < 1.1, (sampler, float(z.std()))
            assert torch.allclose(z.mean(-1), torch.zeros(()), atol=1e-4)


def test_a_new_window_releases_the_notes_its_decoder_cannot_see():
    """At each new window, a note still sounding whose NOTE_ON lies before the window's
    context is released (its decoder would never end it); notes it can see are kept."""
    pipe = GenerationPipeline(tiny().eval())
    v = TOK.vocab
    on = lambda p: [v.velocity.start + 20, v.note_on.start + p - TOK.config.pitch_min]  # noqa: E731
    shift = v.shift.start + 9  # 10 steps
    history = [v.sos_id, *on(60), *([shift] * 40), *on(64), shift]
    state = Sampling().grammar(TOK, "cpu")
    state.feed(torch.tensor([history[1:]]))
    ctx_start = len(history) - 3  # the context holds the NOTE_ON of 64, not that of 60
    pipe._release_unseen(history, state, ctx_start)
    assert history[-1] == v.note_off.start + 60 - TOK.config.pitch_min and len(history) == ctx_start + 4
    sounding = state.sounding[0].nonzero().flatten() + TOK.config.pitch_min
    assert sounding.tolist() == [64]
    pipe._release_unseen(history, state, len(history) - 4)  # nothing more to release
    assert state.sounding[0].sum() == 1


def test_decoder_only_is_a_plain_causal_transformer(tmp_path, capsys):
    """The baseline of the controls issue: no plan modules, no cross-attention; it
    learns, its likelihood is exact (no sampled latents), it continues and samples
    from scratch, and the modes that need a plan fail with a one-line error."""
    from tatumflow.cli.main import main
    from tatumflow.midi import write_midi
    from tatumflow.training.checkpoint import model_state, save_checkpoint

    m = tiny(seq_len=128, dropout=0.0, decoder_only=True, dec_layers=3)
    names = {n.split(".")[0] for n, _ in m.named_parameters()}
    assert names == {"embed", "pos", "decoder", "dec_norm"}
    assert not any("cross" in n for n, _ in m.named_parameters())
    b = _batch()
    opt = torch.optim.AdamW(m.parameters(), 2e-3)
    first = m.training_step(b).metrics["recon"]
    for _ in range(40):
        out = m.training_step(b)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    assert set(out.metrics) == {"recon"} and m.training_step(b).metrics["recon"] < 0.8 * first
    m.eval()
    v = m.validation_step(b).metrics
    # Without latents, "prefix" bits are the decoder's own CE on the second half: recompute it directly.
    ids, keep = b["input_ids"], b["attention_mask"]
    with torch.no_grad():
        logits = m.decode_logits(ids[:, :-1], None, None)
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:],
                                            reduction="none")
    sel = keep[:, 1:] & (torch.arange(1, 128) >= 64)[None]
    assert np.isclose(v["prefix_bits_per_token"], float(nll[sel].mean()) / np.log(2), rtol=1e-5)
    pipe = GenerationPipeline(m)
    assert pipe.modes == ("unconditional", "continuation")
    prompt = random_performance(np.random.default_rng(1), 30, span=4)
    s = Sampling(max_note_seconds=2.0)
    r = pipe.continuation(prompt, 3.0, seed=2, sampling=s)
    assert r.grammar_errors == 0 and r.performance.end > prompt.end
    assert np.array_equal(r.ids, pipe.continuation(prompt, 3.0, seed=2, sampling=s).ids)
    assert len(pipe.unconditional(2.0, seed=1, sampling=s).performance) > 0
    with pytest.raises(TatumFlowError, match="decoder-only"):
        pipe.style_transfer(prompt, prompt, 0.5)
    ck = save_checkpoint(tmp_path / "ck", model_state=m.state_dict(), state={**model_state(m), "run_info": {}})
    a = tmp_path / "a.mid"
    write_midi(prompt, a)
    common = ["generate", "--checkpoint", str(ck), "--prompt", str(a), "--seconds", "2", "--device", "cpu"]
    assert main(common + ["--mode", "continuation", "--out", str(tmp_path / "c.mid")]) == 0
    assert main(common + ["--mode", "interpolate", "--style", str(a), "--out", str(tmp_path / "i.mid")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "decoder-only" in err[0] and "continuation" in err[0]


def _chord_pieces(rng, n, L=128, seconds=8):
    """Windows of music whose every second draws its notes from 3 random pitch
    classes: what the next second plays is known only to a model told its chroma."""
    ids = np.full((n, L), TOK.vocab.pad_id)
    for i in range(n):
        on, pit = [], []
        for f in range(seconds):
            pcs = rng.choice(12, 3, replace=False)
            on += [f + 0.25 * k for k in range(4)]
            pit += [60 + int(p) for p in rng.choice(pcs, 4)]
        on = np.array(on)
        perf = Performance.from_arrays(on, on + 0.2, pit, np.full(len(on), 80))
        t = TOK.encode(perf, sos=True, eos=False)[:L]
        ids[i, : len(t)] = t
    ids = torch.as_tensor(ids)
    return {"input_ids": ids, "attention_mask": ids != TOK.vocab.pad_id}


def test_a_control_track_decoder_learns_to_read_its_plan_and_runs_every_mode(tmp_path):
    """The decoder-only model with the control track, trained on music only its
    chroma can predict, predicts unseen such music better told its controls than
    not (it reads them); every mode runs through a plan, deterministic for a seed
    and grammar-clean, and the request reaches the music."""
    from tatumflow.cli.main import main
    from tatumflow.midi import write_midi
    from tatumflow.training.checkpoint import model_state, save_checkpoint

    m = tiny(seq_len=128, dropout=0.0, decoder_only=True, dec_layers=2, control_track=True, control_dropout=0.5)
    rng = np.random.default_rng(0)
    opt = torch.optim.AdamW(m.parameters(), 3e-3)
    for _ in range(80):
        out = m.training_step(_chord_pieces(rng, 8))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    m.eval()
    ids = _chord_pieces(np.random.default_rng(99), 8)["input_ids"]
    c = m.controls_of(ids)

    def ce(controls):
        with torch.no_grad():
            lg = m.decode_logits(ids[:, :-1], None, None, controls=controls)
        return float(torch.nn.functional.cross_entropy(lg.transpose(1, 2), ids[:, 1:], ignore_index=TOK.vocab.pad_id))
    told, blind = ce({k: v[:, :-1] for k, v in c.items()}), ce(None)
    assert told < blind - 0.05, (told, blind)
    pipe = GenerationPipeline(m)
    assert pipe.modes == tuple(MODES)
    rng = np.random.default_rng(1)
    a, other = random_performance(rng, 40, span=6), random_performance(rng, 40, span=6)
    s = Sampling(max_note_seconds=2.0)
    r = pipe.edit_harmony(a, "Dm7 G7 Cmaj7", seed=3, sampling=s)
    assert r.grammar_errors == 0 and len(r.performance) > 0
    assert np.array_equal(r.ids, pipe.edit_harmony(a, "Dm7 G7 Cmaj7", seed=3, sampling=s).ids)
    assert not np.array_equal(r.ids, pipe.edit_harmony(a, "F#7 B7 E7", seed=3, sampling=s).ids)
    for res in ([pipe.style_transfer(a, other, 0.75, seed=1, sampling=s)], pipe.improvise(a, 0.5, 2, seed=1, sampling=s),
                pipe.interpolate(a, other, (0.0, 1.0), 3.0, seed=1, sampling=s)):
        assert all(x.grammar_errors == 0 and len(x.performance) > 0 for x in res)
    ck = save_checkpoint(tmp_path / "ck", model_state=m.state_dict(), state={**model_state(m), "run_info": {}})
    write_midi(a, tmp_path / "a.mid")
    assert main(["generate", "--checkpoint", str(ck), "--prompt", str(tmp_path / "a.mid"), "--mode", "edit-harmony",
                 "--chords", "Dm7 G7", "--device", "cpu", "--out", str(tmp_path / "e.mid")]) == 0
    assert (tmp_path / "e.mid").exists()
