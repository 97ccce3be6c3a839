"""MelodyVAE: data with reasons, the model's recipe, and every musician action."""

import numpy as np
import pytest
import torch

from conftest import midi_file, track, tune
from tatumflow import Performance, write_midi
from tatumflow.errors import TatumFlowError
from tatumflow.models.melody_vae import (Bender, MelodyDataset, MelodyVAE, MelodyVAEConfig, decode, encode,
                                         interpolate, load_melodies, melody_line, sample)
from tatumflow.models.melody_vae.data import melody_grid, split_windows

CFG = MelodyVAEConfig(z_dim=4, hidden=64, dropout=0.0)
CELL = 0.125  # seconds per 16th at 120 qpm


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("melodies")
    for i in range(12):
        write_midi(tune(i), d / "tunes" / f"t{i}.mid")
    chord = Performance.from_arrays([0, 0, 0, 1, 1], [1, 1, 1, 2, 2], [60, 64, 67, 62, 65], [80] * 5)
    write_midi(chord, d / "other" / "chords.midi")
    write_midi(Performance.from_arrays([0.0], [0.2], [60], [80]), d / "other" / "one_note.mid")
    drums = track([(0, b"\x99\x24\x64"), (96, b"\x89\x24\x00")])
    (d / "other" / "drums.mid").write_bytes(midi_file(1, 96, [drums]))
    return d


def test_loader_reports_every_file_it_cannot_use(folder):
    w, rep = load_melodies(folder, CFG, voice="mono")
    reasons = {s["file"]: s["reason"] for s in rep.skipped}
    assert rep.files == 15 and rep.used == 12 and len(w) == rep.windows > 12 * 5
    assert "polyphonic" in reasons["other/chords.midi"]
    assert "drum tracks only" in reasons["other/drums.mid"]
    assert "no window" in reasons["other/one_note.mid"]
    _, top = load_melodies(folder, CFG, voice="top")
    assert "other/chords.midi" not in {s["file"] for s in top.skipped}  # its top voice is a melody
    line = melody_line(Performance.from_arrays([0, 0, 0, 1], [1, 1, 1, 2], [60, 64, 67, 62], [80] * 4), "top")
    assert line.notes["pitch"].tolist() == [67, 62]


def test_grid_places_notes_on_the_16th_cells():
    t = tune(3, bars=2)
    g = melody_grid(t, CFG)
    on = np.flatnonzero(g["onset"])
    assert np.allclose(on * CELL, t.notes["onset"]) and (g["pitch"][on] == t.notes["pitch"]).all()
    assert np.allclose(g["duration"][on] * CELL, t.notes["offset"] - t.notes["onset"])
    slow = melody_grid(t.replace(metadata={"qpm": 60.0}), CFG)  # the same seconds at half the tempo: half the cells
    assert np.flatnonzero(slow["onset"]).tolist() == sorted(set(np.round(on / 2).astype(int)))


def test_transposition_copies_and_splits(folder):
    w, _ = load_melodies(folder, CFG)
    tr, va = split_windows(w)
    assert len(tr) and len(va) and not set(tr.source) & set(va.source)  # whole files held out
    ds = MelodyDataset(tr, CFG, transpose=(-2, 3))
    assert len(ds) == 3 * len(tr)
    a, b = ds[0], ds[2]
    on = a["onset"].bool()
    assert torch.equal((b["pitch"] - a["pitch"])[on], torch.full((int(on.sum()),), 3))


def overfit(folder, steps=300):
    torch.manual_seed(0)
    w, _ = load_melodies(folder, CFG)
    ds = MelodyDataset(w.take(range(16)), CFG)
    batch = {k: torch.stack([ds[i][k] for i in range(16)]) for k in ds[0]}
    m = MelodyVAE(CFG)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    m.scalars["kl_weight"] = 0.01
    first = None
    for _ in range(steps):
        out = m.training_step(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.metrics
    return m.eval(), batch, first, m.validation_step(batch).metrics


def test_the_model_learns_to_reconstruct(folder):
    m, batch, first, last = overfit(folder)
    assert last["onset_accuracy"] > 0.97 and last["pitch_accuracy"] > 0.9, last
    assert last["recon"] < 0.25 * first["recon"] and last["kl"] > 0
    with pytest.raises(TatumFlowError, match="pitch_min"):
        MelodyVAEConfig(pitch_min=90, pitch_max=60)


def test_controls_do_what_they_say(folder):
    m, batch, _, _ = overfit(folder)
    z, mels = sample(m, 8, seed=1)
    z2, mels2 = sample(m, 8, seed=1)
    assert torch.equal(z, z2) and all(np.array_equal(a.notes, b.notes) for a, b in zip(mels, mels2))
    dense = sum(len(p) for p in decode(m, z, threshold=0.2))
    sparse = sum(len(p) for p in decode(m, z, threshold=0.8))
    assert dense > sparse  # a higher onset threshold writes fewer notes
    moved = decode(m, z, noise=2.0, generator=torch.Generator().manual_seed(0))
    assert any(not np.array_equal(a.notes, b.notes) for a, b in zip(mels, moved))
    a, b = tune(0), tune(5)
    za, zb = encode(m, a), encode(m, b)
    assert torch.equal(za, encode(m, a)) and not torch.allclose(za, zb)
    zs, line = interpolate(m, a, b, 5)
    assert torch.allclose(zs[0], za, atol=1e-5) and torch.allclose(zs[-1], zb, atol=1e-5) and len(line) == 5
    steps = (zs[1:] - zs[:-1]).norm(dim=1)
    assert steps.max() < (zb - za).norm()  # consecutive codes closer than the ends
    ref = decode(m, za[None])[0]  # the encoded melody decodes back to (almost) itself
    g = melody_grid(a, CFG)
    cells = np.round(ref.notes["onset"] / CELL).astype(int)
    true_on = np.flatnonzero(g["onset"][:32])
    assert len(set(cells) & set(true_on)) >= 0.8 * len(true_on)
    with pytest.raises(TatumFlowError, match="threshold"):
        decode(m, z, threshold=1.5)
    with pytest.raises(TatumFlowError, match="steps"):
        interpolate(m, a, b, 1)


def test_bending_is_seeded_and_reset_restores_every_bit(folder):
    m, _, _, _ = overfit(folder, steps=50)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    z = torch.randn(4, CFG.z_dim, generator=torch.Generator().manual_seed(0))
    clean = decode(m, z)
    b = Bender(m)
    names = b.bend(1.0, seed=3)
    assert names and all(not n.startswith(("encoder", "mu", "logvar")) for n in names)
    bent = {k: v.clone() for k, v in m.state_dict().items()}
    assert torch.equal(bent["encoder.0.weight"], before["encoder.0.weight"])  # the encoder is left alone
    assert not torch.equal(bent["pitch.weight"], before["pitch.weight"])
    assert any(not np.array_equal(x.notes, y.notes) for x, y in zip(clean, decode(m, z)))
    b.reset()
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())  # bit for bit
    b.bend(1.0, seed=3)
    assert all(torch.equal(v, bent[k]) for k, v in m.state_dict().items())  # seeded: the same bend again
    b.reset()
    assert b.bend(0.5, layers=["onset"]) == ["onset.weight", "onset.bias"]
    with pytest.raises(TatumFlowError, match="no decoder layer"):
        b.bend(0.5, layers=["encoder"])
    with pytest.raises(TatumFlowError, match="amount"):
        b.bend(-1.0)
    b.reset()
    m.reset_parameters(torch.Generator().manual_seed(1))  # clear: untrained again, from a seed
    cleared = {k: v.clone() for k, v in m.state_dict().items()}
    assert not torch.equal(cleared["pitch.weight"], before["pitch.weight"])
    m.reset_parameters(torch.Generator().manual_seed(1))
    assert all(torch.equal(v, cleared[k]) for k, v in m.state_dict().items())
