"""Can TatumFlow fit one batch? Reconstruction loss on a single fixed batch.

    python benchmarks/tatumflow_overfit.py [--store STORE] [--batch 4] [--steps 400] [--preset tiny]

Takes ``--batch`` windows of the preset's length from the store's train split
(default: the built-in chorales store, built on first use), trains the model on
that batch alone (dropout off, AdamW, constant learning rate) and prints the
loss parts every 25 steps: the reconstruction cross-entropy (nats/token) must
fall to near zero if the encoder, latents and decoder are wired right. Numbers
only, not a test (the test suite's version is shorter and only checks a fall).
"""

from __future__ import annotations

import argparse
import time

import torch

from tatumflow.data import TokenStore
from tatumflow.data.dataset import TokenWindowDataset
from tatumflow.models.tatumflow import TatumFlow, preset
from tatumflow.training.run import default_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args()
    store = TokenStore(args.store or default_store())
    tok = store.tokenizer()
    torch.manual_seed(0)
    model = TatumFlow(preset(args.preset, vocab_size=tok.vocab_size, tokenizer=tok.config.to_dict(), dropout=0.0))
    ds = TokenWindowDataset(store, split="train", seq_len=model.config.seq_len, seed=0)
    items = [ds[i] for i in range(args.batch)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    opt = torch.optim.AdamW(model.parameters(), args.lr, weight_decay=0.0)
    print(f"{args.preset}: {sum(p.numel() for p in model.parameters()):,} parameters, one batch of "
          f"{args.batch} x {model.config.seq_len} tokens ({int(batch['attention_mask'].sum())} real)")
    print("| step | recon (nats/token) | diffusion | style KL | s |")
    print("|---:|---:|---:|---:|---:|")
    t0 = time.perf_counter()
    for step in range(args.steps + 1):
        model.train()
        out = model.training_step(batch)
        if step % 25 == 0 or step == args.steps:
            m = out.metrics
            print(f"| {step} | {m['recon']:.4f} | {m['diffusion']:.4f} | {m['kl']:.3f} | "
                  f"{time.perf_counter() - t0:.0f} |", flush=True)
        if step < args.steps:
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        v = model.validation_step(batch).metrics
    print(f"eval mode (posterior means, no dropout): recon {v['recon']:.4f} nats/token, "
          f"{v['bits_per_token']:.4f} bits/token")


if __name__ == "__main__":
    main()
