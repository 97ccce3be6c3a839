from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, random_performance
from tatumflow import Performance, TatumFlowError, read_midi, write_midi
from tatumflow.data import prepare_store
from tatumflow.models.music_rnn import NoteStreamer, generate_from_prompt
from tatumflow.models.music_rnn import MusicRNN, MusicRNNConfig, NoteWindowDataset
from tatumflow.models.registry import FAMILIES
from tatumflow.pretrained import load_model
from tatumflow.models.music_rnn import note_bits



@pytest.mark.parametrize("option", ["A", "C", "D"])
def test_streaming_equals_full_forward(option):
    torch.manual_seed(0)
    m = MusicRNN(MusicRNNConfig(option=option)).eval()
    notes = torch.rand(1, 12, 4) * torch.tensor([100.0, 0.5, 1.0, 127.0])
    full, _ = m(notes)
    state, outs = None, []
    for t in range(12):
        h, state = m(notes[:, t : t + 1], state)
        outs.append(h[0])
    torch.testing.assert_close(torch.cat(outs, 1), full[0], rtol=1e-5, atol=1e-5)


def test_bidirectional_option_refuses_to_generate():
    m = MusicRNN(MusicRNNConfig(option="B"))
    with pytest.raises(TatumFlowError, match="bidirectional"):
        NoteStreamer(m)
    assert m(torch.rand(2, 10, 4))[0][0].shape == (2, 1, 128)  # analysis: one prediction per window


def test_bidirectional_option_reads_the_whole_window_backwards():
    """Option B's prediction depends on the window's first note through its backward
    direction (it once took the backward state after the last note only): with the
    forward direction silenced, changing the first note must still change it."""
    torch.manual_seed(0)
    m = MusicRNN(MusicRNNConfig(option="B")).eval()
    with torch.no_grad():
        for name, w in m.lstm1.named_parameters():
            if not name.endswith("_reverse"):
                w.zero_()  # the forward direction outputs a constant
    x = torch.rand(1, 10, 4) * torch.tensor([100.0, 0.5, 1.0, 127.0])
    y = x.clone()
    y[0, 0, 0] += 30  # another first pitch
    with torch.no_grad():
        assert not torch.allclose(m(x)[0][0], m(y)[0][0])


def test_overfit_one_batch():
    torch.manual_seed(0)
    m = MusicRNN(MusicRNNConfig(option="C", seq_len=16))
    batch = {"notes": torch.cat([torch.randint(40, 80, (4, 17, 1)).float(), torch.rand(4, 17, 2) * 0.5,
                                 torch.full((4, 17, 1), 64.0)], -1)}
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(600):
        loss = m.training_step(batch).loss
        first = first or float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.1 * first


def test_generation_always_ends_even_when_time_stands_still(tmp_path):
    from tatumflow import Performance

    torch.manual_seed(0)
    m = MusicRNN(MusicRNNConfig(option="C"))
    with torch.no_grad():  # a model that always predicts "no time passes"
        m.step.weight.zero_()
        m.step.bias.fill_(-1.0)
    res = generate_from_prompt(m, Performance.from_arrays([0.0], [0.5], [60], [80]), 2.0, tmp_path / "x.mid")
    assert 0 < res["notes"] <= 2.0 / 0.01 * 8


def test_windows_and_likelihood(store):
    ds = NoteWindowDataset(store, split="train", seq_len=20)
    w = ds[5]["notes"]
    assert w.shape == (21, 4) and w[0, 1] == 0 and (w[:, 0] >= 21).all() and (w[:, 3] >= 1).all()
    ds.set_scalar("seq_len", 30)
    assert ds[0]["notes"].shape == (31, 4)
    m = MusicRNN(MusicRNNConfig(option="A"))
    out = m.validation_step({"notes": torch.stack([ds[i]["notes"] for i in range(8)])})
    assert 0 <= out.metrics["pitch_accuracy"] <= 1 and 5 < out.metrics["bits_per_note"] < 60
    assert 4 < out.metrics["velocity_bits_per_note"] < 10  # untrained: about log2(128) = 7 bits
    seed = MusicRNN(MusicRNNConfig(option="A", velocity=False)).validation_step(
        {"notes": torch.stack([ds[i]["notes"] for i in range(8)])})  # the seed's model: no velocity head
    assert "velocity_bits_per_note" not in seed.metrics and 5 < seed.metrics["bits_per_note"] < 60
    binned = MusicRNN(MusicRNNConfig(option="C", time_bins=64)).validation_step(
        {"notes": torch.stack([ds[i]["notes"] for i in range(8)])})
    assert 5 < binned.metrics["bits_per_note"] < 60
    # a better prediction costs fewer bits
    tgt = torch.tensor([[60.0, 0.25, 0.5]])
    good = note_bits(torch.nn.functional.one_hot(torch.tensor([60]), 128).float() * 10, torch.tensor([0.25]),
                     torch.tensor([0.5]), torch.zeros(2), tgt)
    bad = note_bits(torch.zeros(1, 128), torch.tensor([2.0]), torch.tensor([0.01]), torch.zeros(2), tgt)
    assert float(good) < float(bad)


def test_train_and_generate_from_the_cli(store, tmp_path):
    from tatumflow.cli.main import main

    assert main(["train", "--config", str(REPO / "configs" / "music_rnn_c.yaml"), "--data", str(store),
                 "--out", str(tmp_path / "run"), "train.max_steps=30", "train.eval_every=15",
                 "train.batch_size=16", "train.tensorboard=false"]) == 0
    ckpt = next((tmp_path / "run").glob("step-*"))
    n = random_performance(np.random.default_rng(50), 60, pedal=False).notes  # shifted: it starts after a silence
    played = Performance.from_arrays(n["onset"] + 1.5, n["offset"] + 1.5, n["pitch"], n["velocity"])
    prompt = write_midi(played, tmp_path / "prompt.mid")
    assert main(["generate", "--checkpoint", str(ckpt), "--prompt", str(prompt), "--seconds", "10",
                 "--out", str(tmp_path / "gen.mid"), "--pianoroll", str(tmp_path / "gen.png")]) == 0
    gen, p = read_midi(tmp_path / "gen.mid"), read_midi(prompt)
    # The prompt comes back unchanged and every new note starts after its last onset, within the 10 s asked.
    key = lambda n: (round(float(n["onset"]), 3), int(n["pitch"]))  # noqa: E731
    prompt_keys = {key(n) for n in p.notes}
    new = np.array([n["onset"] for n in gen.notes if key(n) not in prompt_keys])
    assert len(gen) - len(new) == len(p) and len(new) > 5
    last = p.notes["onset"].max()
    assert new.min() >= last - 1e-3 and new.max() <= last + 10.0 + 1e-3
    assert (tmp_path / "gen.png").exists()
    model, state = load_model(ckpt)
    assert state["model_config"]["option"] == "C"
    a = generate_from_prompt(model, p, 5.0, tmp_path / "a.mid", seed=7)["performance"]
    b = generate_from_prompt(model, p, 5.0, tmp_path / "b.mid", seed=7)["performance"]
    assert a == b  # same seed, same music
    assert (tmp_path / "run" / "tb").exists() is False
    assert main(["train", "--config", str(REPO / "configs" / "music_rnn_c.yaml"), "--data", str(store),
                 "model.option=Z"]) == 2


def test_lora_finetune_from_a_config(store, tmp_path):
    import yaml

    from tatumflow.training.lora import apply_lora, load_adapter
    from tatumflow.training.run import train_from_config

    base = train_from_config(REPO / "configs" / "music_rnn_pijama.yaml", families=FAMILIES, data=store,
                             out=tmp_path / "base", progress=False,
                             overrides=["train.max_steps=10", "train.batch_size=8", "train.tensorboard=false"])
    spec = yaml.safe_load((REPO / "configs" / "music_rnn_tatum_lora.yaml").read_text())
    spec["finetune"]["base"] = base["checkpoint"]
    spec["train"].update(max_steps=10, batch_size=8, eval_every=5, tensorboard=False)
    (tmp_path / "ft.yaml").write_text(yaml.safe_dump(spec))
    ft = train_from_config(tmp_path / "ft.yaml", families=FAMILIES, data=store, out=tmp_path / "ft", progress=False)
    assert Path(ft["adapter"]).exists()
    # the adapter on a fresh copy of the base reproduces the fine-tuned model
    base_model, _ = load_model(base["checkpoint"])
    tuned, _ = load_model(ft["checkpoint"], ema=False)
    apply_lora(base_model, r=8, alpha=16, targets=spec["finetune"]["lora"]["targets"])
    load_adapter(base_model, tmp_path / "ft" / "adapter")
    x = torch.rand(1, 10, 4) * torch.tensor([100.0, 0.3, 0.5, 127.0])
    with torch.no_grad():
        torch.testing.assert_close(base_model.eval()(x)[0][0], tuned(x)[0][0])
        assert not torch.allclose(base_model(x)[0][0], load_model(base["checkpoint"])[0](x)[0][0])
    spec["model"]["option"] = "A"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(Exception, match="not this run's model"):
        train_from_config(tmp_path / "bad.yaml", families=FAMILIES, data=store, out=tmp_path / "bad", progress=False)


def test_prepare_where_keeps_a_subset(tmp_path):
    from tatumflow.data import TokenStore

    d = tmp_path / "d"
    rows = ["path,pianist,split"]
    for i in range(6):
        write_midi(random_performance(np.random.default_rng(i), 50), d / f"{i}.mid")
        rows.append(f"{i}.mid,{'Tatum' if i % 2 else 'Other'},train")
    (d / "index.csv").write_text("\n".join(rows) + "\n")
    prepare_store(d / "index.csv", tmp_path / "s", where={"pianist": "Tatum"}, workers=1, progress=False)
    st = TokenStore(tmp_path / "s")
    assert len(st) == 3 and {f["meta"]["pianist"] for f in st.files} == {"Tatum"}
    assert "where pianist=Tatum" in st.manifest["source"]


def test_live_port_sink_plays_in_time(monkeypatch):
    mido = pytest.importorskip("mido")
    import time as _time

    from tatumflow.models.music_rnn import MidiPortSink

    sent = []

    class Port:
        def send(self, msg):
            sent.append((_time.perf_counter(), msg.type, msg.note))

        def close(self):
            sent.append((_time.perf_counter(), "closed", -1))

    monkeypatch.setattr(mido, "open_output", lambda *a, **k: Port())
    sink = MidiPortSink()
    for note in [(1.0, 1.1, 60, 70), (1.2, 1.25, 64, 90), (1.2, 1.3, 67, 90)]:
        sink(note)
    sink.close()
    kinds = [(k, n) for _, k, n in sent]
    assert kinds[:2] == [("note_on", 60), ("note_off", 60)]
    assert kinds[-1] == ("closed", -1) and kinds.count(("note_off", 67)) == 1
    t0 = sent[0][0]
    on64 = next(t for t, k, n in sent if (k, n) == ("note_on", 64))
    assert 0.18 < on64 - t0 < 0.35  # played 0.2 s after the first note, in real time
    on67 = next(t for t, k, n in sent if (k, n) == ("note_on", 67))
    assert abs(on67 - on64) < 0.002  # a chord's notes leave together
    assert np.percentile(sink.lateness_ms(), 99) < 10


def test_sampled_notes_stay_on_the_piano():
    """The fixture model puts weight on pitches outside the piano (its pinned outputs
    held 117 and 127 before the mask); generation keeps every note on the 88 keys."""
    from tatumflow.models.music_rnn import performance_to_notes

    model = load_model(REPO / "tests" / "fixtures" / "music_rnn_v1")[0]
    st = NoteStreamer(model, seed=1)
    st.prime(performance_to_notes(random_performance(np.random.default_rng(0), 24, pedal=False, span=3.0)))
    pitches = np.array([st.next_note()[0] for _ in range(300)])
    assert ((pitches >= 21) & (pitches <= 108)).all() and len(np.unique(pitches)) > 20


def test_time_bins_score_and_sample_every_10ms_step():
    from tatumflow.models.music_rnn.model import TimeBins

    bins = TimeBins(64, 8.0)
    k = torch.arange(0, 801)
    b = bins.index(k * 0.01)
    # every 10 ms step falls in exactly one bin, the bins partition 0..8 s in order
    assert (b.diff() >= 0).all() and int(bins.count.sum()) == 801 and int(b[0]) == 0 and int(b[1]) == 1
    assert (bins.first_k[b] <= k).all() and (k < bins.first_k[b] + bins.count[b]).all()
    # bits over all steps form a distribution: sum of 2^-bits is 1
    logits = torch.randn(64).expand(801, 64)
    assert abs(float((2 ** -bins.bits(logits, k * 0.01)).sum()) - 1) < 1e-4
    gen = torch.Generator().manual_seed(0)
    peaked = torch.full((64,), -30.0)
    peaked[int(bins.index(torch.tensor(0.5)))] = 30.0
    draws = [bins.sample(peaked, 1.0, gen) for _ in range(50)]
    assert all(int(bins.index(torch.tensor(d))) == int(bins.index(torch.tensor(0.5))) for d in draws)
    assert len(set(draws)) > 1  # sampled within the bin, not its mean


def test_velocity_and_time_heads_are_learned_and_sampled():
    """A model trained on loud notes plays loud, on quiet notes quietly; its sampled
    steps follow the training steps (not a constant)."""
    torch.manual_seed(0)

    def trained(vel):
        m = MusicRNN(MusicRNNConfig(option="C", seq_len=16, time_bins=32, max_time=2.0))
        steps = torch.tensor([0.1, 0.3]).repeat(4, 9)[:, :17, None]
        batch = {"notes": torch.cat([torch.randint(50, 70, (4, 17, 1)).float(), steps, torch.full((4, 17, 1), 0.2),
                                     torch.randint(vel - 5, vel + 5, (4, 17, 1)).float()], -1)}
        opt = torch.optim.Adam(m.parameters(), lr=2e-2)
        for _ in range(150):
            loss = m.training_step(batch).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        return m.eval()

    out = {}
    for vel in (30, 100):
        st = NoteStreamer(trained(vel), seed=0)
        st.prime(np.array([[60, 0.0, 0.2, vel]], dtype=np.float32))
        out[vel] = np.array([st.next_note() for _ in range(40)])
    assert np.median(out[30][:, 3]) < 45 and np.median(out[100][:, 3]) > 85
    steps = out[100][:, 1]
    assert len(np.unique(np.round(steps, 2))) > 1 and 0.05 < np.median(steps) < 0.4
