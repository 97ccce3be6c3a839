"""Theory-feature speed on a (32, 1024) batch of real PiJAMA token windows.

    python benchmarks/feature_speed.py [--store STORE | --data ../shared/data] [--batch 32] [--len 1024]

Compares the batched torch face (``TheoryFeatures``: token ids in, feature
tensors out) with the per-token Python loop of the design review (seed 000 §1: harmony, melody, rhythm and dynamics
extractors that call ``.item()`` and parse token names for every token),
ported to this tokenizer's names, with its time bug fixed (shifts accumulate).
Both kernel choices of the batch face are timed: torch ops throughout (what runs
on a GPU), and the CPU default (the same formulas on numpy views of the tensors).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def seed_loop_features(tokens: torch.Tensor, id_to_token: dict[int, str]) -> torch.Tensor:
    """The seed's four extractors, one Python iteration per token per family."""
    B, L = tokens.shape
    out = []
    # harmony: pitch-class counts
    pcs = torch.zeros(B, 12)
    for b in range(B):
        for t in range(L):
            s = id_to_token.get(tokens[b, t].item(), "")
            if s.startswith("NOTE_ON_"):
                pcs[b, int(s.split("_")[2]) % 12] += 1.0
    out.append(pcs / (pcs.sum(-1, keepdim=True) + 1e-6))
    # melody: skyline per time, interval and contour histograms, range
    mel = []
    for b in range(B):
        tp: dict[int, list[int]] = {}
        now = 0
        for t in range(L):
            s = id_to_token.get(tokens[b, t].item(), "")
            if s.startswith("TIME_SHIFT_"):
                now += int(s.split("_")[2][:-2])
            elif s.startswith("NOTE_ON_"):
                tp.setdefault(now, []).append(int(s.split("_")[2]))
        sky = [max(v) for v in tp.values()]
        if len(sky) > 1:
            iv = np.diff(sky)
            mel.append(np.concatenate([np.histogram(iv, bins=25, range=(-12, 13))[0] / len(iv),
                                       np.histogram(np.sign(iv), bins=3, range=(-1.5, 1.5))[0] / len(iv),
                                       [(max(sky) - min(sky)) / 88.0]]))
        else:
            mel.append(np.zeros(29))
    out.append(torch.tensor(np.array(mel), dtype=torch.float32))
    # rhythm: IOIs between onset times
    rhy = []
    for b in range(B):
        iois, last, now = [], None, 0
        for t in range(L):
            s = id_to_token.get(tokens[b, t].item(), "")
            if s.startswith("TIME_SHIFT_"):
                now += int(s.split("_")[2][:-2])
            elif s.startswith("NOTE_ON_"):
                if last is not None and now > last:
                    iois.append(now - last)
                last = now
        if iois:
            h = np.histogram(np.log10(np.array(iois) + 1), bins=32, range=(0, 4))[0]
            p = h / (h.sum() + 1e-6)
            rhy.append(np.concatenate([h / len(iois), [np.std(iois) / (np.mean(iois) + 1e-6),
                                                      -np.sum(p * np.log2(p + 1e-6))]]))
        else:
            rhy.append(np.zeros(34))
    out.append(torch.tensor(np.array(rhy), dtype=torch.float32))
    # dynamics: velocity histogram and moments
    dyn = []
    for b in range(B):
        vels = []
        for t in range(L):
            s = id_to_token.get(tokens[b, t].item(), "")
            if s.startswith("VELOCITY_"):
                vels.append(int(s.split("_")[1]) * 4 + 2)
        if vels:
            v = np.array(vels)
            dyn.append(np.concatenate([np.histogram(v, bins=32, range=(0, 128))[0] / len(v),
                                       [np.ptp(v) / 127.0, v.mean() / 127.0, v.std() / 127.0]]))
        else:
            dyn.append(np.zeros(35))
    out.append(torch.tensor(np.array(dyn), dtype=torch.float32))
    return torch.cat(out, 1)


def load_batch(store_path: Path, batch: int, length: int) -> tuple[torch.Tensor, object]:
    from tatumflow.data import TokenStore

    store = TokenStore(store_path)
    rng = np.random.default_rng(0)
    rows = []
    while len(rows) < batch:
        t = np.asarray(store.tokens(int(rng.integers(len(store)))))
        if len(t) > length:
            s = int(rng.integers(0, len(t) - length))
            rows.append(t[s : s + length].astype(np.int64))
    return torch.as_tensor(np.stack(rows)), store.tokenizer()


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, help="an existing PiJAMA token store")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--len", type=int, default=1024)
    args = ap.parse_args()
    from tatumflow.features.torch_face import TheoryFeatures

    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            from tatumflow.data import prepare_store

            store = Path(tmp) / "pijama"
            prepare_store(args.data / "pijama" / "index.csv", store, progress=False)
        ids, tok = load_batch(store, args.batch, args.len)
    id_to_token = {i: tok.vocab.token_name(i) for i in range(tok.vocab_size)}
    timed = {}
    for kernels in ("auto", "torch"):
        feats = TheoryFeatures(tok, kernels=kernels)
        feats(ids)  # warm-up
        timed[kernels] = best_of(lambda: feats(ids), 30)
    t_loop = best_of(lambda: seed_loop_features(ids, id_to_token), 3)
    dims = sum(feats.dims.values())
    print(f"batch ({args.batch}, {args.len}) of real PiJAMA windows, CPU, {torch.get_num_threads()} threads")
    print("| implementation | features | ms per batch | speed-up |")
    print("|---|---:|---:|---:|")
    print(f"| seed 000 §1 per-token Python loop | 4 families, 110 values | {1e3 * t_loop:.1f} | 1.0x |")
    for kernels, label in (("auto", "CPU default: numpy kernels"), ("torch", "torch kernels throughout")):
        t = timed[kernels]
        print(f"| TatumFlow TheoryFeatures, batched ({label}) | 5 families, {dims} values | {1e3 * t:.1f} | {t_loop / t:.0f}x |")


if __name__ == "__main__":
    main()
