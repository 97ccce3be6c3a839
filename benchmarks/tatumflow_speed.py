"""TatumFlow speed: training tokens/s against a plain transformer of the same
size, and generation with and without the decoder's KV cache.

    python benchmarks/tatumflow_speed.py [--presets tiny,small] [--device auto]
                                         [--steps 5] [--batch 8] [--cache-preset small] [--new-tokens 512]

Training: for each preset, TatumFlow's full training step (theory features,
style VAE, latent encoder, diffusion loss, causal decoder, backward, AdamW)
on random token windows of the preset's length, next to a plain causal
transformer language model (pre-norm encoder layers with a causal mask, tied
output) whose depth is chosen to match TatumFlow's parameter count. Prints
tokens/s of both and the ratio (the issue's target: >= 0.8x).

Generation: the grammar-constrained decoding loop of
:class:`~tatumflow.models.tatumflow.GenerationPipeline` writing
``--new-tokens`` tokens after a one-token prompt, with the KV cache and without
it (every step re-reads the whole prefix). Prints tokens/s and the speed-up
(target: >= 10x at 512 new tokens). Random weights: speed does not depend on
them. Numbers only, not a test.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.nn import functional as F

from tatumflow.generation.constrained import GrammarState
from tatumflow.models.tatumflow import GenerationPipeline, Sampling, TatumFlow, preset
from tatumflow.tokenizer import PerformanceTokenizer
from tatumflow.utils import select_device


class PlainLM(nn.Module):
    """A decoder-only transformer LM: the baseline of equal size."""

    def __init__(self, vocab: int, d: int, heads: int, layers: int, seq_len: int, dropout: float = 0.1):
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq_len, d)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        layer.self_attn.dropout = 0.0  # as TatumFlow: dropout on sub-layer outputs only
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        L = ids.shape[1]
        x = self.embed(ids) + self.pos(torch.arange(L, device=ids.device))[None]
        mask = nn.Transformer.generate_square_subsequent_mask(L, device=ids.device)
        x = self.body(x, mask=mask, is_causal=True)
        return F.linear(self.norm(x), self.embed.weight)


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def plain_of_size(cfg, target: int) -> PlainLM:
    d = cfg.d_model
    per_layer = 12 * d * d + 13 * d
    fixed = cfg.vocab_size * d + cfg.seq_len * d + 2 * d
    layers = max(1, round((target - fixed) / per_layer))
    return PlainLM(cfg.vocab_size, d, cfg.n_heads, layers, cfg.seq_len, cfg.dropout)


def random_windows(tok: PerformanceTokenizer, B: int, L: int, gen: torch.Generator) -> torch.Tensor:
    """Token windows drawn from the grammar's allowed next tokens (music-like
    streams, so the theory features see notes), fast enough for a benchmark."""
    st = GrammarState(tok, B)
    out = torch.empty(B, L, dtype=torch.long)
    out[:, 0] = tok.vocab.sos_id
    for j in range(1, L):  # benchmark set-up, not a hot path
        m = st.mask().float()
        nxt = torch.multinomial(m / m.sum(1, keepdim=True), 1, generator=gen)[:, 0]
        st.update(nxt)
        out[:, j] = nxt
    return out


def time_steps(step, steps: int, device: torch.device) -> float:
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def train_row(name: str, args, tok, device) -> dict:
    cfg = preset(name, vocab_size=tok.vocab_size, tokenizer=tok.config.to_dict())
    torch.manual_seed(0)
    tf = TatumFlow(cfg).to(device).train()
    plain = plain_of_size(cfg, count(tf)).to(device).train()
    ids = random_windows(tok, args.batch, cfg.seq_len, torch.Generator().manual_seed(0)).to(device)
    keep = torch.ones_like(ids, dtype=torch.bool)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def stepper(model, loss_fn):
        opt = torch.optim.AdamW(model.parameters(), 1e-4)

        def step():
            with amp:
                loss = loss_fn()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    def plain_loss():
        logits = plain(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))

    tokens = args.batch * (cfg.seq_len - 1)
    s_tf = time_steps(stepper(tf, lambda: tf.losses(ids, keep)["loss"]), args.steps, device)
    s_pl = time_steps(stepper(plain, plain_loss), args.steps, device)
    return {"preset": name, "params": count(tf), "plain_params": count(plain), "plain_layers": len(plain.body.layers),
            "tf": tokens / s_tf, "plain": tokens / s_pl}


def cache_row(name: str, args, tok, device) -> dict:
    cfg = preset(name, vocab_size=tok.vocab_size, tokenizer=tok.config.to_dict())
    if cfg.seq_len <= args.new_tokens:
        cfg = preset(name, vocab_size=tok.vocab_size, tokenizer=tok.config.to_dict(),
                     seq_len=cfg.span * (args.new_tokens // cfg.span + 1))
    torch.manual_seed(0)
    pipe = GenerationPipeline(TatumFlow(cfg), device)
    lat = torch.randn(1, cfg.n_latents, cfg.latent_dim, device=device)
    style = torch.zeros(1, cfg.style_dim, device=device)
    out = {"preset": name, "params": count(pipe.model), "new": args.new_tokens}
    for cached in (True, False):
        s = Sampling(use_cache=cached)
        gen = torch.Generator().manual_seed(0)
        st = GrammarState(tok, 1, device)
        t0 = time.perf_counter()
        new = pipe.decode(lat, style, [tok.vocab.sos_id], st, s, gen, context=1, max_new=args.new_tokens)
        if device.type == "cuda":
            torch.cuda.synchronize()
        out["cache" if cached else "nocache"] = len(new) / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="tiny,small")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per model")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--cache-preset", default="small")
    ap.add_argument("--new-tokens", type=int, default=512)
    args = ap.parse_args()
    device = select_device(args.device)
    tok = PerformanceTokenizer()
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}\n")
    print("| preset | TatumFlow params | plain LM (layers, params) | TatumFlow tokens/s | plain tokens/s | ratio |")
    print("|---|---:|---|---:|---:|---:|")
    for name in args.presets.split(","):
        r = train_row(name, args, tok, device)
        print(f"| {name} | {r['params'] / 1e6:.1f}M | {r['plain_layers']}, {r['plain_params'] / 1e6:.1f}M | "
              f"{r['tf']:,.0f} | {r['plain']:,.0f} | {r['tf'] / r['plain']:.2f}x |", flush=True)
    if args.cache_preset:
        r = cache_row(args.cache_preset, args, tok, device)
        print(f"\n| decoder ({r['preset']}, {r['params'] / 1e6:.1f}M) | new tokens | with KV cache tokens/s | "
              "without tokens/s | speed-up |")
        print("|---|---:|---:|---:|---:|")
        print(f"| grammar-constrained sampling | {r['new']} | {r['cache']:,.1f} | {r['nocache']:,.1f} | "
              f"{r['cache'] / r['nocache']:.1f}x |")


if __name__ == "__main__":
    main()
