import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import random_performance
from tatumflow import StoreError, write_midi
from tatumflow.data import TokenStore, prepare_store, store_statistics
from tatumflow.data.dataset import TokenWindowDataset
from tatumflow.tokenizer import Augmentation


@pytest.fixture
def midi_folder(tmp_path):
    folder = tmp_path / "midi"
    for i in range(12):
        write_midi(random_performance(np.random.default_rng(i), 150, span=20.0), folder / f"sub{i % 3}" / f"p{i:02d}.mid")
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (folder / "empty.midi").write_bytes(b"")
    return folder


def test_prepare_stores_every_file_and_reports_failures(midi_folder, tmp_path):
    res = prepare_store(midi_folder, tmp_path / "store", workers=2, files_per_shard=4, progress=False)
    assert res.files == 12 and res.failed == 2
    store = TokenStore(tmp_path / "store")
    reasons = {f["key"]: f["reason"] for f in store.failures}
    assert "corrupt MIDI" in reasons["broken.mid"] and "empty" in reasons["empty.midi"]
    tok = store.tokenizer()
    for i, rec in enumerate(store.files):
        from tatumflow import read_midi

        expect = tok.encode(read_midi(rec["path"]))
        assert np.array_equal(np.asarray(store.tokens(i)), expect)
        assert rec["notes"] == 150 and rec["split"] in ("train", "val", "test")
    st = store_statistics(store)
    assert st["files"] == 12 and st["tokens"] == sum(r["length"] for r in store.files)
    assert st["vocab_usage"]["NOTE_ON"]["tokens"] == st["notes"]
    m = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert m["tokenizer_hash"] == tok.config.hash


def test_rerun_skips_finished_work_and_resumes_after_interruption(midi_folder, tmp_path):
    out = tmp_path / "store"
    prepare_store(midi_folder, out, workers=1, files_per_shard=4, progress=False)
    first = [np.asarray(t).copy() for t in TokenStore(out).iter_tokens()]
    again = prepare_store(midi_folder, out, workers=1, files_per_shard=4, progress=False)
    assert again.shards_built == 0 and again.shards_reused == 4
    # Simulate a run killed while writing shard 2: its commit record is gone and a temp file remains.
    (out / "shards" / "00002.json").unlink()
    (out / "shards" / ".00002.npy.abc.tmp").write_bytes(b"half")
    res = prepare_store(midi_folder, out, workers=1, files_per_shard=4, progress=False)
    assert res.shards_built == 1 and res.shards_reused == 3
    assert not any(p.name.startswith(".") for p in (out / "shards").iterdir())
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(first, TokenStore(out).iter_tokens()))


def test_interrupted_prepare_leaves_nothing_corrupt(midi_folder, tmp_path, monkeypatch):
    import tatumflow.data.store as store_mod

    out = tmp_path / "store"
    calls = {"n": 0}
    real = store_mod._build_shard

    def dies_on_third(job):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(store_mod, "_build_shard", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        prepare_store(midi_folder, out, workers=1, files_per_shard=4, progress=False)
    assert not (out / "manifest.json").exists()
    with pytest.raises(StoreError, match="not a token store"):
        TokenStore(out)
    monkeypatch.setattr(store_mod, "_build_shard", real)
    res = prepare_store(midi_folder, out, workers=1, files_per_shard=4, progress=False)
    assert res.shards_reused == 2 and res.files == 12


def test_changed_tokenizer_needs_new_store(midi_folder, tmp_path):
    from tatumflow import TokenizerConfig

    prepare_store(midi_folder, tmp_path / "s", workers=1, progress=False)
    with pytest.raises(StoreError, match="another tokenizer"):
        prepare_store(midi_folder, tmp_path / "s", tokenizer_config=TokenizerConfig(release="duration"),
                      workers=1, progress=False)


def test_csv_index_with_splits(tmp_path):
    folder = tmp_path / "data"
    for i in range(4):
        write_midi(random_performance(np.random.default_rng(i), 50), folder / "midi" / f"a, b's {i}.midi")
    rows = ["path,pianist,split"] + [f'"midi/a, b\'s {i}.midi",X,{"train" if i < 3 else "test"}' for i in range(4)]
    (folder / "index.csv").write_text("\n".join(rows) + "\n")
    prepare_store(folder / "index.csv", tmp_path / "s", workers=1, progress=False)
    store = TokenStore(tmp_path / "s")
    assert [f["split"] for f in store.files] == ["train", "train", "train", "test"]
    assert store.files[0]["meta"] == {"pianist": "X"}
    assert store.indices("test").tolist() == [3]


def test_dataset_labels_windows_by_a_metadata_column_and_draws_a_share(tmp_path):
    """``labels`` gives each window its file's class (listed value, any other, none);
    ``label_share`` draws that share of windows from the listed files."""
    folder = tmp_path / "data"
    who = ["A", "B", "C", "", "B", "C"]
    for i in range(len(who)):
        write_midi(random_performance(np.random.default_rng(i), 80), folder / f"{i}.midi")
    (folder / "index.csv").write_text("path,pianist,split\n" + "".join(f"{i}.midi,{w},train\n" for i, w in enumerate(who)))
    prepare_store(folder / "index.csv", tmp_path / "s", workers=1, progress=False)
    plain = TokenWindowDataset(tmp_path / "s", split="train", seq_len=32, samples_per_epoch=400)
    assert "pianist" not in plain[0]
    ds = TokenWindowDataset(tmp_path / "s", split="train", seq_len=32, samples_per_epoch=400, labels=["A"])
    assert torch.equal(ds[5]["input_ids"], plain[5]["input_ids"])  # labels change no window
    want = {"A": 0, "B": 1, "C": 1, "": -1}
    for i in range(40):
        k, _ = ds._window(i)
        assert int(ds[i]["pianist"]) == want[who[int(ds.indices[k])]]
    share = TokenWindowDataset(tmp_path / "s", split="train", seq_len=32, samples_per_epoch=400, labels=["A"],
                               label_share=0.5)
    got = np.array([int(share[i]["pianist"]) for i in range(400)])
    assert 0.4 < (got == 0).mean() < 0.6 and (got == 1).any() and (got == -1).any()
    with pytest.raises(ValueError, match="label_share"):
        TokenWindowDataset(tmp_path / "s", split="train", seq_len=32, labels=["A"], label_share=1.5)


def test_dataset_windows_are_deterministic_and_split_aware(midi_folder, tmp_path):
    prepare_store(midi_folder, tmp_path / "s", workers=1, progress=False)
    ds = TokenWindowDataset(tmp_path / "s", split=None, seq_len=64, seed=3)
    a, b = ds[5], ds[5]
    assert torch.equal(a["input_ids"], b["input_ids"]) and a["input_ids"].shape == (64,)
    assert a["input_ids"].dtype == torch.long and a["attention_mask"].all()
    ds.set_epoch(1)
    assert not torch.equal(ds[5]["input_ids"], a["input_ids"])
    store = TokenStore(tmp_path / "s")
    # every window is a contiguous slice of one stored file
    w = ds.window(7)
    assert any(np.any(np.all(np.lib.stride_tricks.sliding_window_view(np.asarray(t), len(w)) == w, axis=1))
               for t in store.iter_tokens())
    aug = TokenWindowDataset(tmp_path / "s", split=None, seq_len=64, seed=3, augment=Augmentation())
    ids = aug[0]["input_ids"].numpy()
    assert ids.max() < store.tokenizer().vocab_size
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    assert next(iter(loader))["input_ids"].shape == (4, 64)
    ds.set_scalar("max_tokens", 20)  # the length curriculum: same shapes, only the first 20 tokens real
    c = ds[5]
    assert c["input_ids"].shape == (64,) and int(c["attention_mask"].sum()) == 20
    assert torch.equal(c["input_ids"][:20], torch.as_tensor(ds.window(5)[:20]))
    assert (c["input_ids"][20:] == ds.pad_id).all()
    with pytest.raises(ValueError, match="max_tokens"):
        ds.set_scalar("seq_len", 10)
    with pytest.raises(StoreError, match="no files"):
        TokenWindowDataset(tmp_path / "s", split="nope")


@pytest.mark.parametrize("damage", ["truncate", "random bytes"])
def test_a_damaged_shard_is_found_and_rebuilt(midi_folder, tmp_path, damage):
    out = tmp_path / "store"
    prepare_store(midi_folder, out, workers=1, files_per_shard=4, progress=False)
    first = [np.asarray(t).copy() for t in TokenStore(out).iter_tokens()]
    npy = out / "shards" / "00001.npy"
    size = npy.stat().st_size
    if damage == "truncate":
        npy.write_bytes(npy.read_bytes()[: size // 2])
        with pytest.raises(StoreError, match="shard damaged"):  # not an mmap error deep inside numpy
            list(TokenStore(out).iter_tokens())
    else:
        npy.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    res = prepare_store(midi_folder, out, workers=1, files_per_shard=4, progress=False)
    assert res.shards_built == 1 and res.shards_reused == 3
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(first, TokenStore(out).iter_tokens()))
    m = json.loads((out / "manifest.json").read_text())
    assert [s["npy_bytes"] for s in m["shards"]][1] == size and len(m["shards"][1]["sha256"]) == 64


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_prepare_ends_its_workers(tmp_path):
    folder = tmp_path / "many"
    for i in range(16):
        write_midi(random_performance(np.random.default_rng(i), 3000, span=300.0), folder / f"{i:02d}.mid")
    code = (f"from tatumflow.data import prepare_store\n"
            f"prepare_store({str(folder)!r}, {str(tmp_path / 'store')!r}, workers=2, files_per_shard=1, "
            f"progress=False)\n")
    parent = subprocess.Popen([sys.executable, "-c", code])

    def children() -> list[int]:
        kids = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    stat = (p / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent.pid:
                    kids.append(int(p.name))
        return kids

    deadline = time.time() + 60
    while len(children()) < 2 and parent.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    kids = children()
    assert len(kids) >= 2, "the workers never started"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    alive = kids
    while alive and time.time() < deadline:
        time.sleep(0.05)
        alive = [k for k in kids if Path(f"/proc/{k}").exists()
                 and (Path(f"/proc/{k}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z")]
    assert not alive, f"workers {alive} outlived their parent"
