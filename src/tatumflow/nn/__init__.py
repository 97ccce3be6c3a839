"""Transformer building blocks shared by TatumFlow's models.

* :class:`MultiScaleAttention` — self-attention at several time scales
  (1, 2, 4): each scale average-pools the sequence (and ORs its padding mask),
  attends with :func:`torch.nn.functional.scaled_dot_product_attention`,
  repeats back to full length; a learned projection fuses the scales.
* :class:`DiTBlock` — a diffusion-transformer block with AdaLN-Zero modulation
  (shift, scale and a zero-initialised gate for attention and MLP, from a
  conditioning vector).
* :class:`CausalDecoderBlock` — causal self-attention with a KV cache, then
  cross-attention to a memory (the latents), then an MLP.
* :func:`timestep_embedding` — the sinusoidal code of diffusion steps.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) integer or real steps -> (B, dim) sinusoidal features."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([a.cos(), a.sin()], -1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class MLP(nn.Sequential):
    def __init__(self, d: int, mult: int = 4, dropout: float = 0.0):
        super().__init__(nn.Linear(d, mult * d), nn.GELU(approximate="tanh"), nn.Dropout(dropout), nn.Linear(mult * d, d))


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    B, L, D = x.shape
    return x.view(B, L, h, D // h).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    B, h, L, d = x.shape
    return x.transpose(1, 2).reshape(B, L, h * d)


def pool_time(x: torch.Tensor, keep: Optional[torch.Tensor], s: int):
    """Average ``s`` consecutive positions (padding excluded); a pooled position
    is kept when any of its members is."""
    if s == 1:
        return x, keep
    B, L, D = x.shape
    pad = (-L) % s
    w = torch.ones(B, L, device=x.device, dtype=x.dtype) if keep is None else keep.to(x.dtype)
    if pad:
        x = F.pad(x, (0, 0, 0, pad))
        w = F.pad(w, (0, pad))
    x = (x * w[..., None]).view(B, -1, s, D).sum(2)
    n = w.view(B, -1, s).sum(2)
    return x / n.clamp_min(1.0)[..., None], n > 0


class MultiScaleAttention(nn.Module):
    """Bidirectional self-attention at time scales ``scales``, fused.

    Each scale has its own query/key/value projection; coarse scales see
    longer context at a fraction of the cost (L/s positions). ``dropout`` acts
    on the fused output, not on the attention probabilities, so the fused SDPA
    kernels stay usable in training (attention-probability dropout forces the
    unfused math path, ~40% slower per step on CPU)."""

    def __init__(self, d: int, heads: int, scales: Sequence[int] = (1, 2, 4), dropout: float = 0.0):
        super().__init__()
        if d % heads:
            raise ValueError(f"width {d} must divide by heads {heads}")
        self.h, self.scales, self.dropout = heads, tuple(scales), dropout
        self.qkv = nn.ModuleList(nn.Linear(d, 3 * d) for _ in self.scales)
        self.fuse = nn.Linear(d * len(self.scales), d)

    def forward(self, x: torch.Tensor, keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        B, L, D = x.shape
        outs = []
        for s, proj in zip(self.scales, self.qkv):
            xs, ks = pool_time(x, keep, s)
            q, k, v = (_heads(t, self.h) for t in proj(xs).chunk(3, -1))
            mask = None if ks is None else ks[:, None, None, :]
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            o = _merge(o)
            if s > 1:
                o = o.repeat_interleave(s, dim=1)[:, :L]
            outs.append(o)
        return F.dropout(self.fuse(torch.cat(outs, -1)), self.dropout, self.training)


class DiTBlock(nn.Module):
    """AdaLN-Zero transformer block: ``cond`` (B, C) sets per-channel shift, scale
    and gate of both sub-layers; gates start at zero, so a fresh block is the identity."""

    def __init__(self, d: int, heads: int, cond_dim: int, scales: Sequence[int] = (1, 2, 4), dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = MultiScaleAttention(d, heads, scales, dropout)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(d, 4, dropout)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * d))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        s1, c1, g1, s2, c2, g2 = self.ada(cond).chunk(6, -1)
        x = x + g1[:, None] * self.attn(modulate(self.norm1(x), s1, c1), keep)
        return x + g2[:, None] * self.mlp(modulate(self.norm2(x), s2, c2))


class KVCache:
    """Keys and values of the positions decoded so far, per layer, in buffers that
    grow by doubling (appending a step copies only the new position, not the
    whole cache as ``torch.cat`` would)."""

    def __init__(self):
        self._k: list[Optional[torch.Tensor]] = []
        self._v: list[Optional[torch.Tensor]] = []
        self.n: list[int] = []
        self.memory: list[Optional[tuple[torch.Tensor, torch.Tensor]]] = []

    def __len__(self) -> int:
        return self.n[0] if self.n else 0

    def slot(self, i: int) -> None:
        while len(self._k) <= i:
            self._k.append(None)
            self._v.append(None)
            self.n.append(0)
            self.memory.append(None)

    def append(self, i: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add (B, H, T, D) keys/values to layer ``i``; return all of them so far."""
        self.slot(i)
        n, t = self.n[i], k.shape[2]
        buf = self._k[i]
        if buf is None or n + t > buf.shape[2]:
            cap = max(2 * (n + t), 64)
            nk = k.new_empty(k.shape[:2] + (cap,) + k.shape[3:])
            nv = v.new_empty(nk.shape)
            if buf is not None:
                nk[:, :, :n] = buf[:, :, :n]
                nv[:, :, :n] = self._v[i][:, :, :n]
            self._k[i], self._v[i] = nk, nv
        self._k[i][:, :, n: n + t] = k
        self._v[i][:, :, n: n + t] = v
        self.n[i] = n + t
        return self._k[i][:, :, : n + t], self._v[i][:, :, : n + t]


class CausalDecoderBlock(nn.Module):
    """Pre-norm block: causal self-attention (KV-cached when decoding), cross-attention
    to ``memory`` (with its padding mask), MLP. Dropout acts on each sub-layer's
    output (see :class:`MultiScaleAttention`). ``cross=False``: no cross-attention
    (a plain causal transformer block; ``memory`` is ignored)."""

    def __init__(self, d: int, heads: int, dropout: float = 0.0, *, cross: bool = True):
        super().__init__()
        self.h, self.dropout, self.cross = heads, dropout, cross
        self.norm1, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        if cross:
            self.norm2 = nn.LayerNorm(d)
            self.q_cross = nn.Linear(d, d)
            self.kv_cross = nn.Linear(d, 2 * d)
            self.proj_cross = nn.Linear(d, d)
        self.mlp = MLP(d, 4, dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_keep: Optional[torch.Tensor] = None,
                cache: Optional[KVCache] = None, layer: int = 0) -> torch.Tensor:
        p = self.dropout if self.training else 0.0
        q, k, v = (_heads(t, self.h) for t in self.qkv(self.norm1(x)).chunk(3, -1))
        if cache is not None:
            k, v = cache.append(layer, k, v)
        Lq, Lk = q.shape[2], k.shape[2]
        if Lq == 1:
            a = F.scaled_dot_product_attention(q, k, v)
        elif Lq == Lk:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # a block of new positions after cached ones
            mask = torch.ones(Lq, Lk, dtype=torch.bool, device=x.device).tril(Lk - Lq)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + F.dropout(self.proj(_merge(a)), p, self.training)
        if not self.cross:
            return x + self.mlp(self.norm3(x))
        if cache is not None and cache.memory[layer] is not None:
            mk, mv = cache.memory[layer]
        else:
            mk, mv = (_heads(t, self.h) for t in self.kv_cross(memory).chunk(2, -1))
            if cache is not None:
                cache.memory[layer] = (mk, mv)
        mask = None if memory_keep is None else memory_keep[:, None, None, :]
        c = F.scaled_dot_product_attention(_heads(self.q_cross(self.norm2(x)), self.h), mk, mv, attn_mask=mask)
        x = x + F.dropout(self.proj_cross(_merge(c)), p, self.training)
        return x + self.mlp(self.norm3(x))


__all__ = ["timestep_embedding", "modulate", "MLP", "pool_time", "MultiScaleAttention", "DiTBlock", "KVCache",
           "CausalDecoderBlock"]
