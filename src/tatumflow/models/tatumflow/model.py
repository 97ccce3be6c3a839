"""TatumFlow: hierarchical latent diffusion over expressive piano tokens.

One window of ``seq_len`` tokens is modelled at two levels:

* **Latents** — a bidirectional encoder reads the tokens; every ``span`` tokens
  are pooled into one latent vector (``latent_dim``), with a Gaussian posterior
  (unit-scale mean, learned spread, a small KL) so the latent space is smooth.
* **Tokens** — a causal decoder predicts each token from the tokens before it,
  cross-attending to the latents (the plan of the whole window) and conditioned
  on the style vector. Decoding is left to right, so a prompt can be continued
  token by token with a KV cache (seed 001's bidirectional decoder could not).

Alongside:

* **Theory encoder** — the real harmony, melody, rhythm and dynamics features of
  :mod:`tatumflow.features` (torch batch face), computed for the tokens of each
  latent's span, each family projected (128, 128, 64, 64) and fused to
  ``theory_dim``; an orthogonality loss pushes the four component embeddings
  apart (squared cross-correlation over the batch, which is defined for
  components of different widths, unlike the seed's cosine).
* **Style VAE** — pooled token embeddings -> 128 -> (mu, logvar) of a 64-d style;
  its KL has free bits (``style_free_bits`` nats per dimension are not charged),
  without which the style collapses to the prior (measured: KL 0.001 nats after
  725 steps on the chorales) and style transfer / interpolation do nothing.
* **Denoiser** — DiT blocks with AdaLN-Zero modulation from the diffusion step
  and the style; the per-span theory embedding is added to the noisy latents;
  multi-scale attention at scales 1, 2, 4. Trained on the (detached) latent
  means with the noise (or v) as target; condition dropout (~10%) teaches the
  unconditional branch used by classifier-free guidance, and a theory known
  only for a prefix of spans (25%) teaches what continuation asks for.

Loss: ``w_recon * CE + w_diff * diffusion + w_kl * KL(style) + w_orth * orth
+ w_latent_kl * KL(latents)``; defaults 1.0 / 0.5 / 0.1 / 0.2 / 1e-3.

Making the decoder read the plan (all off by default, so older checkpoints and
recipes behave as before; measured in the README's scorecard section). Trained
on posterior latents that have seen the tokens they help predict, the decoder
learns to copy from them, and at generation, where the latents come from the
diffusion prior, it either ignores the plan (style transfer, interpolation and
harmony edits do nothing) or trusts a wrong one. ``token_dropout`` masks a
share of its input tokens (it cannot read the next token off the last ones);
``gen_latent_prob`` gives it, after a random prefix of spans, the denoiser's
own estimate of the latents; ``latent_dropout`` hides all latents from some
samples (the style and the theory must carry the piece); ``style_from_denoiser``
lets the diffusion loss shape the style (a style the denoiser needs is one that
steers the plan); ``theory_in_decoder`` puts each span's theory embedding next
to its latent in the decoder's memory.

``decoder_only`` builds the baseline the latent design has to beat: the same
token embedding and causal decoder blocks without cross-attention, trained on
next-token cross-entropy alone (a plain causal transformer; give it more
``dec_layers`` for an equal parameter count, ``configs/tatumflow_tiny_plain.yaml``).
With ``control_track`` that decoder is also told, at every token, the chroma and
texture of the second its music has reached (:mod:`.controls`): the plan the
transforming modes write from, without latents (``configs/tatumflow_tiny_control.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from ...diffusion import NoiseSchedule
from ...errors import TatumFlowError
from ...utils import check_field_types
from ...nn import MLP, CausalDecoderBlock, DiTBlock, KVCache, modulate, timestep_embedding
from ...tokenizer import PerformanceTokenizer, TokenizerConfig
from ..protocol import StepOutput

THEORY_FAMILIES = ("harmony", "melody", "rhythm", "dynamics")
#: What a decoder-only model (the plain baseline) can generate, and the error for the rest.
PLAIN_MODES = ("unconditional", "continuation")
DECODER_ONLY = ("this TatumFlow is decoder-only (the plain causal-transformer baseline: no latents, style or "
                f"theory); it runs {' and '.join(PLAIN_MODES)} only")


@dataclass
class TatumFlowConfig:
    vocab_size: int = 715
    seq_len: int = 512
    span: int = 32                 # tokens per latent
    d_model: int = 256
    n_heads: int = 4
    latent_dim: int = 256
    enc_layers: int = 2
    dit_layers: int = 4
    dec_layers: int = 4
    dit_width: int = 0             # 0: d_model
    style_dim: int = 64
    style_hidden: int = 128
    theory_dims: tuple = (128, 128, 64, 64)
    theory_dim: int = 512
    scales: tuple = (1, 2, 4)      # multi-scale attention; (1,) is plain attention
    dropout: float = 0.1
    diffusion_steps: int = 1000
    schedule: str = "cosine"
    prediction: str = "eps"        # eps | v
    cond_dropout: float = 0.1
    theory_prefix_dropout: float = 0.25   # P(theory known only for a random prefix of spans), as in continuation
    gen_latent_prob: float = 0.0   # P(the decoder reads, after a random prefix of spans, the denoiser's latents)
    token_dropout: float = 0.0     # share of the decoder's input tokens masked in training (it must read the plan)
    latent_dropout: float = 0.0    # P(the decoder sees no latents, only the style and the tokens) per sample
    style_from_denoiser: bool = False  # the diffusion loss trains the style encoder too (the style must inform the plan)
    theory_in_decoder: bool = False    # the decoder reads each span's theory embedding with its latent (harmony edits steer it)
    # The plain causal-transformer baseline: the decoder alone (no encoder, latents, style,
    # theory or denoiser; no cross-attention). Runs continuation and unconditional only.
    decoder_only: bool = False
    # The control track (decoder-only models; ``controls.py``): every token is told the chroma and
    # texture of the frame its music has reached, read off the music in training and hidden per
    # sample and per frame at random; generation gives it a request (every mode but continuation
    # and unconditional, which give none).
    control_track: bool = False
    control_frame: float = 1.0     # seconds per control frame
    control_dropout: float = 0.5   # P(a sample's chroma, and separately its texture, are hidden)
    control_gain: float = 10.0     # fixed scale on the control track's (zero-initialised) logit offsets
    # The pianist control (control-track models): each window is told who plays it, one of
    # ``pianists`` or "another pianist" (one more class), as weights over those classes (so two
    # can be blended), hidden with ``control_dropout``; training reads it from the store's
    # ``pianist`` column (``data.pianist_share``: the named pianists' share of the windows).
    pianists: tuple = ()
    # The count control (control-track models): with the texture each token is also told how
    # many of its frame's onsets are left to write and how much of the frame has gone
    # (``controls.count_inputs``), so the decoder keeps the density it is asked for.
    control_count: bool = False
    # The tally control (control-track models): with the texture each token is also told how
    # many of its frame's onset clusters are left to begin, how many notes the cluster sounding
    # now has and the register its frame's remaining onsets need (``controls.tally_inputs``),
    # so the decoder keeps the voicing and register it is asked for.
    control_tally: bool = False
    w_recon: float = 1.0
    w_diff: float = 0.5
    w_kl: float = 0.1
    w_orth: float = 0.2
    w_latent_kl: float = 1e-3
    style_free_bits: float = 0.1   # nats per style dimension the KL does not charge (keeps the style in use)
    tokenizer: Optional[TokenizerConfig] = None   # the model's tokens (None: the default config)

    def __post_init__(self) -> None:
        check_field_types(self, TatumFlowError, prefix="model.")
        self.theory_dims, self.scales = tuple(self.theory_dims), tuple(self.scales)
        self.pianists = tuple(str(p) for p in self.pianists)
        if self.tokenizer is None or isinstance(self.tokenizer, dict):
            self.tokenizer = TokenizerConfig.from_dict(self.tokenizer) if self.tokenizer else TokenizerConfig()
        n = PerformanceTokenizer(self.tokenizer).vocab_size  # the one vocabulary check
        if n != self.vocab_size:
            raise TatumFlowError(f"the tokenizer (config {self.tokenizer.hash}) has {n} tokens, "
                                 f"the model's vocab_size is {self.vocab_size}")
        if self.seq_len % self.span:
            raise TatumFlowError(f"seq_len {self.seq_len} must be a multiple of span {self.span}")
        if self.d_model % self.n_heads or self.width % self.n_heads:
            raise TatumFlowError(f"widths {self.d_model}/{self.width} must divide by n_heads {self.n_heads}")
        if self.prediction not in ("eps", "v"):
            raise TatumFlowError(f"prediction must be eps or v, got {self.prediction!r}")
        if len(self.theory_dims) != len(THEORY_FAMILIES):
            raise TatumFlowError(f"theory_dims needs {len(THEORY_FAMILIES)} widths {THEORY_FAMILIES}")
        if self.control_track and not self.decoder_only:
            raise TatumFlowError("model.control_track needs model.decoder_only (the latent model has its own plan)")
        if self.control_frame <= 0:
            raise TatumFlowError(f"model.control_frame must be > 0 seconds, got {self.control_frame}")
        if not 0.0 <= self.control_dropout <= 1.0:
            raise TatumFlowError(f"model.control_dropout must be in [0, 1], got {self.control_dropout}")
        if self.control_count and not self.control_track:
            raise TatumFlowError("model.control_count (the count control) needs model.control_track")
        if self.control_tally and not self.control_track:
            raise TatumFlowError("model.control_tally (the tally control) needs model.control_track")
        if self.pianists and not self.control_track:
            raise TatumFlowError("model.pianists (the pianist control) needs model.control_track")
        if len(set(self.pianists)) != len(self.pianists):
            raise TatumFlowError(f"model.pianists names a pianist twice: {list(self.pianists)}")

    #: Fields a fine-tuning run may set apart from its base (``finetune.base``): they add parts
    #: (which start from their initialisation) or only change how training regularises.
    FINETUNE_FREE = ("control_track", "control_frame", "control_dropout", "control_gain", "pianists",
                     "control_count", "control_tally", "token_dropout", "dropout")

    @property
    def width(self) -> int:
        return self.dit_width or self.d_model

    @property
    def n_latents(self) -> int:
        return self.seq_len // self.span

    def to_dict(self) -> dict:
        """The model's hyper-parameters (JSON); the tokenizer config travels on its own."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tokenizer"}
        d["theory_dims"], d["scales"] = list(self.theory_dims), list(self.scales)
        return d

    @classmethod
    def from_dict(cls, d: dict, *, tokenizer: Optional[TokenizerConfig] = None) -> "TatumFlowConfig":
        return cls(**d, tokenizer=tokenizer)


#: Seed 001's table (hidden / latent / layers / heads); the layer split between
#: encoder, denoiser and decoder is ours, chosen to land on ~45M / ~110M / ~350M.
PRESETS: dict[str, dict] = {
    "tiny": dict(seq_len=256, span=16, d_model=128, n_heads=4, latent_dim=64, enc_layers=1, dit_layers=2,
                 dec_layers=2, theory_dim=256),
    "small": dict(seq_len=1024, span=32, d_model=384, n_heads=6, latent_dim=192, enc_layers=4, dit_layers=5,
                  dec_layers=8),
    "base": dict(seq_len=1024, span=32, d_model=512, n_heads=8, latent_dim=256, enc_layers=4, dit_layers=8,
                 dec_layers=10),
    "large": dict(seq_len=1024, span=32, d_model=768, n_heads=12, latent_dim=384, enc_layers=6, dit_layers=12,
                  dec_layers=13),
}


def preset(name: str, **overrides) -> TatumFlowConfig:
    if name not in PRESETS:
        raise TatumFlowError(f"unknown TatumFlow preset {name!r}; available: {', '.join(PRESETS)}")
    return TatumFlowConfig(**{**PRESETS[name], **overrides})


class TheoryEncoder(nn.Module):
    """Per-span theory features -> four component embeddings -> fused embedding."""

    def __init__(self, cfg: TatumFlowConfig):
        super().__init__()
        from ...features.torch_face import TheoryFeatures

        self.features = TheoryFeatures(PerformanceTokenizer(cfg.tokenizer))
        probe = self.features(torch.zeros(1, 8, dtype=torch.long, device="cpu"), torch.float32)
        self.in_dims = [probe[f].shape[-1] for f in THEORY_FAMILIES]
        self.proj = nn.ModuleList(nn.Sequential(nn.LayerNorm(i), nn.Linear(i, o), nn.GELU())
                                  for i, o in zip(self.in_dims, cfg.theory_dims))
        self.fuse = nn.Sequential(nn.Linear(sum(cfg.theory_dims), cfg.theory_dim), nn.LayerNorm(cfg.theory_dim))
        self.span = cfg.span

    @torch.no_grad()
    def raw(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """The four families of every span's tokens, (B, n, D_f) each, signed-log compressed."""
        B, L = ids.shape
        n = L // self.span
        f = self.features(ids[:, : n * self.span].reshape(B * n, self.span).cpu(), torch.float32)
        return [(torch.sign(f[k]) * torch.log1p(f[k].abs())).reshape(B, n, -1).to(ids.device) for k in THEORY_FAMILIES]

    def forward(self, raw: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        parts = [p(x) for p, x in zip(self.proj, raw)]
        return self.fuse(torch.cat(parts, -1)), parts


def orthogonality_loss(parts: list[torch.Tensor], keep: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean squared cross-correlation between every pair of component embeddings
    (each standardised over the batch): 0 when the components are uncorrelated."""
    xs = []
    for p in parts:
        p = p.reshape(-1, p.shape[-1])
        if keep is not None:
            p = p[keep.reshape(-1)]
        p = p - p.mean(0)
        xs.append(p / (p.std(0, unbiased=False) + 1e-4))
    n = max(1, xs[0].shape[0])
    loss = xs[0].new_zeros(())
    pairs = 0
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            loss = loss + ((xs[i].T @ xs[j]) / n).pow(2).mean()
            pairs += 1
    return loss / max(pairs, 1)


class StyleVAE(nn.Module):
    def __init__(self, d: int, hidden: int, style_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.GELU())
        self.mu = nn.Linear(hidden, style_dim)
        self.logvar = nn.Linear(hidden, style_dim)

    def forward(self, pooled: torch.Tensor):
        h = self.net(pooled)
        return self.mu(h), self.logvar(h).clamp(-10, 10)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per dimension."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


class TatumFlow(nn.Module):
    family = "tatumflow"
    scalar_names = ("kl_weight",)  # what the Trainer's model schedules may set (KL annealing)

    def __init__(self, config: TatumFlowConfig):
        super().__init__()
        self.config = cfg = config
        self.scalars: dict[str, float] = {}
        self.gradient_checkpointing = False
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.pos = nn.Embedding(cfg.seq_len, d)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        if not cfg.decoder_only:
            self._build_plan(cfg)
        if cfg.control_track:
            self._build_controls(cfg)
        self.decoder = nn.ModuleList(CausalDecoderBlock(d, cfg.n_heads, cfg.dropout, cross=not cfg.decoder_only)
                                     for _ in range(cfg.dec_layers))
        self.dec_norm = nn.LayerNorm(d)
        self.schedule = NoiseSchedule(cfg.diffusion_steps, cfg.schedule)
        self.mask_id = PerformanceTokenizer(cfg.tokenizer).vocab.mask_id  # what token dropout writes

    def _build_plan(self, cfg: TatumFlowConfig) -> None:
        """Everything but the token embedding and the decoder: theory encoder, style
        VAE, latent encoder, denoiser and the decoder's memory projections."""
        d, w = cfg.d_model, cfg.width
        self.theory = TheoryEncoder(cfg)
        self.style = StyleVAE(d, cfg.style_hidden, cfg.style_dim)
        layer = nn.TransformerEncoderLayer(d, cfg.n_heads, 4 * d, cfg.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        layer.self_attn.dropout = 0.0  # dropout on the sub-layer outputs only (see tatumflow.nn)
        self.encoder = nn.TransformerEncoder(layer, cfg.enc_layers, enable_nested_tensor=False)
        self.enc_norm = nn.LayerNorm(d)
        self.to_latent = nn.Linear(d, 2 * cfg.latent_dim)
        # Posteriors start nearly deterministic (std e^-3 = 0.05 for the unit-scale latent
        # means, e^-1 for the style): at logvar 0 the sampled noise is as large as the
        # signal and the decoder learns to ignore the latents (measured: one batch stalls
        # at 3.0 nats/token after 400 steps, vs 0.02 with the means).
        nn.init.constant_(self.to_latent.bias[cfg.latent_dim:], -6.0)
        nn.init.constant_(self.style.logvar.bias, -2.0)
        # Denoiser.
        self.den_in = nn.Linear(cfg.latent_dim, w)
        self.den_pos = nn.Parameter(torch.zeros(cfg.n_latents, w))
        self.theory_in = nn.Linear(cfg.theory_dim, w)
        self.null_theory = nn.Parameter(torch.zeros(cfg.theory_dim))
        self.t_embed = MLP(w, 1)
        self.style_cond = nn.Linear(cfg.style_dim, w)
        self.blocks = nn.ModuleList(DiTBlock(w, cfg.n_heads, w, cfg.scales, cfg.dropout) for _ in range(cfg.dit_layers))
        self.den_norm = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.den_ada = nn.Sequential(nn.SiLU(), nn.Linear(w, 2 * w))
        self.den_out = nn.Linear(w, cfg.latent_dim)
        for m in (self.den_ada[1], self.den_out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.den_pos, std=0.02)
        # Decoder.
        self.memory_in = nn.Sequential(nn.Linear(cfg.latent_dim, d), nn.LayerNorm(d))
        self.memory_pos = nn.Parameter(torch.zeros(cfg.n_latents, d))
        nn.init.trunc_normal_(self.memory_pos, std=0.02)
        # The decoder reads the style as one more memory slot next to the latents
        # (attended to when useful), not added to every token embedding: there the
        # sampled style's noise swamps the 0.02-scale embeddings and stalls learning
        # (measured: one batch stuck at 3.3 nats/token after 150 steps).
        self.style_dec = nn.Sequential(nn.Linear(cfg.style_dim, d), nn.LayerNorm(d))
        # The theory of each span (the chord plan, the melody's contour, ...) joins its
        # latent in the decoder's memory: what edit-harmony changes reaches the tokens
        # directly, not only through the denoised latents.
        self.theory_dec = nn.Linear(cfg.theory_dim, d) if cfg.theory_in_decoder else None
        nn.init.zeros_(self.style_cond.weight)  # the denoiser's style condition starts from zero
        nn.init.zeros_(self.style_cond.bias)

    def _build_controls(self, cfg: TatumFlowConfig) -> None:
        """The control track's projections, added to each token's embedding; zero at the
        start, so a plain model fine-tuned with them starts from what it was."""
        from .controls import COUNT, TALLY, TEXTURE

        d = cfg.d_model
        self.control_tokenizer = PerformanceTokenizer(cfg.tokenizer)
        self.chroma_in = nn.Linear(12, d)
        self.texture_in = nn.Linear(len(TEXTURE), d)
        self.null_chroma = nn.Parameter(torch.zeros(d))
        self.null_texture = nn.Parameter(torch.zeros(d))
        # ... and a direct path to the logits (which notes a chroma favours, which registers and
        # time shifts a texture does): the deep path alone learned to read the track far too
        # slowly (measured: 0.01 nats/token of gain after 600 steps on PiJAMA). The offsets are
        # scaled by ``control_gain``: Adam moves a weight by about the learning rate per step, so an
        # offset of a few nats from zero-initialised weights took thousands of steps (0.1 nats
        # after 600 steps at gain 1).
        self.chroma_out = nn.Linear(12, cfg.vocab_size, bias=False)
        self.texture_out = nn.Linear(len(TEXTURE), cfg.vocab_size, bias=False)
        lins = [self.chroma_in, self.texture_in, self.chroma_out, self.texture_out]
        self.control_parts = ["chroma", "texture"]
        if cfg.pianists:  # one class per named pianist and one for any other
            self.pianist_in = nn.Linear(len(cfg.pianists) + 1, d)
            self.null_pianist = nn.Parameter(torch.zeros(d))
            self.pianist_out = nn.Linear(len(cfg.pianists) + 1, cfg.vocab_size, bias=False)
            lins += [self.pianist_in, self.pianist_out]
            self.control_parts.append("pianist")
        self.riders = []  # parts told with the texture, and hidden with it
        for name, on, width in (("count", cfg.control_count, len(COUNT)), ("tally", cfg.control_tally, len(TALLY))):
            if on:
                setattr(self, name + "_in", nn.Linear(width, d))
                setattr(self, name + "_out", nn.Linear(width, cfg.vocab_size, bias=False))
                lins += [getattr(self, name + "_in"), getattr(self, name + "_out")]
                self.riders.append(name)
        for lin in lins:
            nn.init.zeros_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def control_logits(self, controls: Optional[dict], like: torch.Tensor) -> torch.Tensor:
        """(B, L, V) the control track's direct offset to the logits (0 where nothing is given)."""
        out = torch.zeros((), dtype=like.dtype, device=like.device)
        for name, known in self._told(controls):
            proj = getattr(self, name + "_out")
            out = out + proj(controls[name].to(like.dtype)) * controls[known][..., None].to(like.dtype)
        return self.config.control_gain * out

    def _told(self, controls: Optional[dict]) -> list[tuple[str, str]]:
        """(input, its known flag) of each control part given in ``controls``."""
        if controls is None:
            return []
        out = [(name, name + "_known") for name in self.control_parts if name in controls]
        if "texture" in controls:
            out += [(name, "texture_known") for name in self.riders if name in controls]
        return out

    def control_embedding(self, controls: Optional[dict], like: torch.Tensor) -> torch.Tensor:
        """(B, L, d) embedding of ``controls``: ``chroma`` (B, L, 12) and ``texture``
        (B, L, 4), and with the pianist control ``pianist`` (B, L, classes), each with
        ``<name>_known`` (B, L) saying where it is given (elsewhere, or where a part is
        missing, a learned "unknown"). ``None``: nothing given."""
        B, L, _ = like.shape
        out = torch.zeros((), dtype=like.dtype, device=like.device)
        for name in self.control_parts:
            null = getattr(self, "null_" + name).to(like.dtype)
            if controls is None or name not in controls:
                out = out + null
            else:
                proj = getattr(self, name + "_in")
                out = out + torch.where(controls[name + "_known"][..., None], proj(controls[name].to(like.dtype)), null)
        for name in self.riders if controls is not None else ():
            if name in controls:
                proj = getattr(self, name + "_in")
                out = out + proj(controls[name].to(like.dtype)) * controls["texture_known"][..., None].to(like.dtype)
        return out.expand(B, L, -1)

    @torch.no_grad()
    def controls_of(self, ids: torch.Tensor) -> dict:
        """The controls every token of ``ids`` (B, L) is told in training: the chroma and
        texture of the frame reached after it, read off the window's own music
        (``frame``: that frame's index), and with the count and tally controls their
        ``count`` and ``tally``."""
        from ...features.backend import NumpyBackend
        from ...features.torch_face import decode_batch
        from .controls import count_inputs, frame_table, tally_inputs, token_pitches, token_seconds

        tok = self.control_tokenizer
        x = ids.cpu().numpy()
        sec = token_seconds(x, tok)
        f = np.floor(sec / self.config.control_frame + 1e-9).astype(np.int64)
        n = int(f.max()) + 1 if f.size else 1
        chroma, tex = frame_table(decode_batch(x, tok, NumpyBackend), self.config.control_frame, n)
        r = np.arange(x.shape[0])[:, None]
        dev = ids.device
        known = torch.ones(ids.shape, dtype=torch.bool, device=dev)
        out = {"chroma": torch.from_numpy(chroma[r, f]).float().to(dev), "chroma_known": known,
               "texture": torch.from_numpy(tex[r, f]).float().to(dev), "texture_known": known.clone(),
               "frame": torch.from_numpy(f).to(dev)}
        pitch = token_pitches(x, tok)
        if self.config.control_count:
            count = count_inputs(sec, pitch, np.expm1(tex[r, f, 0]), self.config.control_frame)
            out["count"] = torch.from_numpy(count).float().to(dev)
        if self.config.control_tally:
            tally = tally_inputs(sec, pitch, tex[r, f], self.config.control_frame)
            out["tally"] = torch.from_numpy(tally).float().to(dev)
        return out

    def pianist_controls(self, pianist: torch.Tensor, length: int) -> dict:
        """The pianist control of each window: ``pianist`` (B,) the class (an index into
        ``pianists``, ``len(pianists)`` for any other pianist, -1 unknown) -> one-hot
        ``pianist`` (B, length, classes) and ``pianist_known`` (B, length)."""
        k = len(self.config.pianists) + 1
        p = pianist.long()
        onehot = F.one_hot(p.clamp(0, k - 1), k).float()
        return {"pianist": onehot[:, None].expand(-1, length, -1),
                "pianist_known": (p >= 0)[:, None].expand(-1, length)}

    def _drop_controls(self, c: dict) -> dict:
        """Hide each sample's harmony with probability ``control_dropout`` (and, apart,
        its texture); of the rest, hide each frame with a per-sample rate drawn from
        U(0, 0.5): the decoder learns to write from no plan, a partial one or all of it.
        The pianist is hidden per sample with ``control_dropout``."""
        if not self.training:
            return c
        frame = c["frame"]
        B, dev = frame.shape[0], frame.device
        F_ = int(frame.max()) + 1
        out = dict(c)
        for name in ("chroma", "texture"):
            whole = torch.rand(B, 1, device=dev) < self.config.control_dropout
            per_frame = torch.rand(B, F_, device=dev) < torch.rand(B, 1, device=dev) * 0.5
            out[name + "_known"] = c[name + "_known"] & ~(whole | torch.gather(per_frame, 1, frame))
        if "pianist" in c:
            out["pianist_known"] = c["pianist_known"] & (torch.rand(B, 1, device=dev) >= self.config.control_dropout)
        return out

    def set_gradient_checkpointing(self, on: bool = True) -> None:
        """Recompute the denoiser and decoder blocks' activations in the backward
        pass instead of keeping them (less memory, about one more forward pass)."""
        self.gradient_checkpointing = bool(on)

    def _run(self, blk: nn.Module, *args):
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(blk, *args, use_reentrant=False)  # same RNG (dropout) on recompute
        return blk(*args)

    # ------------------------------------------------------------ parts
    def token_embeddings(self, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        pos = torch.arange(offset, offset + ids.shape[1], device=ids.device).clamp_max(self.config.seq_len - 1)
        return self.embed(ids) + self.pos(pos)[None]

    def span_keep(self, keep: torch.Tensor) -> torch.Tensor:
        B, L = keep.shape
        return keep[:, : L - L % self.config.span].reshape(B, -1, self.config.span).any(-1)

    def encode(self, ids: torch.Tensor, keep: Optional[torch.Tensor] = None):
        """Tokens -> style (mu, logvar) and latent posterior (mean, logvar), (B, n, latent_dim)."""
        if self.config.decoder_only:
            raise TatumFlowError(DECODER_ONLY)
        keep = keep if keep is not None else torch.ones_like(ids, dtype=torch.bool)
        h = self.token_embeddings(ids)
        w = keep.to(h.dtype)[..., None]
        # The style VAE reads the pooled embeddings without sending gradients back
        # into the shared token table: with Adam, its KL term's small but steady pull
        # moves the 0.02-scale embeddings at full speed and slows the reconstruction
        # (measured on one batch after 150 steps: 0.16 nats/token with the stop, 0.73 without).
        style_mu, style_lv = self.style(((h * w).sum(1) / w.sum(1).clamp_min(1.0)).detach())
        e = self.enc_norm(self.encoder(h, src_key_padding_mask=~keep))
        B, L, d = e.shape
        s = self.config.span
        n = L // s
        ws = w[:, : n * s].reshape(B, n, s, 1)
        pooled = (e[:, : n * s].reshape(B, n, s, d) * ws).sum(2) / ws.sum(2).clamp_min(1.0)
        mu, lv = self.to_latent(pooled).chunk(2, -1)
        mu = F.layer_norm(mu, mu.shape[-1:])  # unit-scale latent means: a fixed scale for the diffusion
        return (style_mu, style_lv), (mu, lv.clamp(-10, 4))

    def theory_embedding(self, ids: torch.Tensor):
        return self.theory(self.theory.raw(ids))

    def denoise(self, x: torch.Tensor, t: torch.Tensor, cond: Optional[dict]) -> torch.Tensor:
        """The denoiser's prediction (noise or v) for latents ``x`` at steps ``t``.
        ``cond``: ``{"theory": (B, n, theory_dim), "style": (B, style_dim)}``,
        either entry optional; ``None`` is the unconditional branch. In training the
        style may be ``(style, keep)``: samples with ``keep`` False get no style term,
        exactly as the unconditional branch at sampling."""
        B, n, _ = x.shape
        theory = cond.get("theory") if cond else None
        style = cond.get("style") if cond else None
        if theory is None:
            theory = self.null_theory.expand(B, n, -1)
        h = self.den_in(x) + self.den_pos[:n] + self.theory_in(theory)
        c = self.t_embed(timestep_embedding(t, self.config.width).to(h.dtype))
        if isinstance(style, tuple):  # (style, keep): per sample, present or absent (condition dropout)
            c = c + self.style_cond(style[0]) * style[1].to(c.dtype)[:, None]
        elif style is not None:
            c = c + self.style_cond(style)
        keep = cond.get("keep") if cond else None
        for blk in self.blocks:
            h = self._run(blk, h, c, keep)
        shift, scale = self.den_ada(c).chunk(2, -1)
        return self.den_out(modulate(self.den_norm(h), shift, scale))

    def decode_logits(self, ids: torch.Tensor, latents: torch.Tensor, style: torch.Tensor,
                      latent_keep: Optional[torch.Tensor] = None, cache: Optional[KVCache] = None,
                      offset: int = 0, theory: Optional[torch.Tensor] = None,
                      controls: Optional[dict] = None) -> torch.Tensor:
        """Next-token logits at every position of ``ids`` (positions from ``offset``).
        ``theory``: (B, n, theory_dim) per-span theory embedding for a model with
        ``theory_in_decoder`` (``None``: the null theory, nothing known); ``controls``:
        each token's controls for a model with ``control_track`` (:meth:`control_embedding`)."""
        mem = None  # once a cache holds the memory's keys and values, the memory itself is not read again
        if self.config.decoder_only:  # no memory: latents, style and theory are ignored
            latent_keep = None
        elif cache is None or not cache.memory or cache.memory[0] is None:
            slots = self.memory_in(latents) + self.memory_pos[: latents.shape[1]]
            if self.theory_dec is not None:
                if theory is None:
                    theory = self.null_theory.expand(latents.shape[0], latents.shape[1], -1)
                slots = slots + self.theory_dec(theory.to(slots.dtype))
            mem = torch.cat([self.style_dec(style)[:, None], slots], 1)
        if latent_keep is not None:
            latent_keep = torch.cat([latent_keep.new_ones(latent_keep.shape[0], 1), latent_keep], 1)
        x = self.token_embeddings(ids, offset)
        if self.config.control_track:
            x = x + self.control_embedding(controls, x)
        for i, blk in enumerate(self.decoder):
            x = blk(x, mem, latent_keep, cache, i) if cache is not None else self._run(blk, x, mem, latent_keep)
        logits = F.linear(self.dec_norm(x), self.embed.weight)  # output tied to the token embedding
        if self.config.control_track:
            logits = logits + self.control_logits(controls, logits)
        return logits

    # ------------------------------------------------------------ training
    def _drop_cond(self, theory: torch.Tensor, style: torch.Tensor):
        """Condition dropout: each sample loses its theory and style together with
        probability ``cond_dropout`` (the unconditional branch of guidance); with
        probability ``theory_prefix_dropout`` it keeps the theory of a random
        prefix of spans only (what continuation knows: the prompt's harmony)."""
        if not self.training:
            return theory, style
        B, n, _ = theory.shape
        null = self.null_theory.to(theory.dtype)
        if self.config.theory_prefix_dropout > 0:
            part = torch.rand(B, device=theory.device) < self.config.theory_prefix_dropout
            k = torch.randint(0, n, (B,), device=theory.device)
            unknown = part[:, None] & (torch.arange(n, device=theory.device)[None] >= k[:, None])
            theory = torch.where(unknown[..., None], null, theory)
        p = self.config.cond_dropout
        if p <= 0:
            return theory, style
        drop = torch.rand(B, device=theory.device) < p
        theory = torch.where(drop[:, None, None], null, theory)
        return theory, (style, ~drop)  # a dropped style is absent, as ``style=None`` at sampling

    def _generation_latents(self, z: torch.Tensor, x_t: torch.Tensor, out: torch.Tensor,
                            t: torch.Tensor) -> torch.Tensor:
        """With probability ``gen_latent_prob`` per sample, the latents after a random
        prefix of spans become the denoiser's estimate of them (detached, from this
        step's noisy latents): what generation gives the decoder past the prompt,
        rather than posterior latents that have seen the tokens they predict."""
        p = self.config.gen_latent_prob
        if not self.training or p <= 0:
            return z
        B, n, _ = z.shape
        _, x0_hat = self.schedule.to_eps_x0(out.detach().float(), x_t.float(), t, self.config.prediction)
        pick = torch.rand(B, device=z.device) < p
        k = torch.randint(0, n, (B,), device=z.device)
        swap = pick[:, None] & (torch.arange(n, device=z.device)[None] >= k[:, None])  # (B, n)
        x0_hat = F.layer_norm(x0_hat, x0_hat.shape[-1:])  # on the latent set, as the sampler keeps it
        return torch.where(swap[..., None], x0_hat.to(z.dtype), z)

    def _drop_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Word dropout (Bowman et al. 2016): a ``token_dropout`` share of the decoder's
        input tokens (never the first) become MASK, so the next token cannot always
        be read off the tokens before it and the decoder learns to use the latents
        and the style (measured without it: swapping two pieces' styles moves the
        decoder's next-token distribution by 1e-5 nats)."""
        p = self.config.token_dropout
        if not self.training or p <= 0:
            return ids
        drop = torch.rand(ids.shape, device=ids.device) < p
        drop[:, 0] = False
        return ids.masked_fill(drop, self.mask_id)

    def losses(self, ids: torch.Tensor, keep: torch.Tensor,
               pianist: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        """``pianist`` (B,): each window's class for the pianist control (see
        :meth:`pianist_controls`; None: unknown)."""
        cfg = self.config
        tgt = ids[:, 1:].masked_fill(~keep[:, 1:], -100)
        if cfg.decoder_only:
            controls = None
            if cfg.control_track:  # read off the whole window, so a frame's notes are described before they come
                c = self.controls_of(ids.masked_fill(~keep, self.control_tokenizer.vocab.pad_id))
                if cfg.pianists and pianist is not None:
                    c.update(self.pianist_controls(pianist.to(ids.device), ids.shape[1]))
                controls = self._drop_controls({k: v[:, :-1] for k, v in c.items()})
            logits = self.decode_logits(self._drop_tokens(ids[:, :-1]), None, None, controls=controls)
            recon = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tgt.reshape(-1), ignore_index=-100)
            return {"loss": cfg.w_recon * recon, "recon": recon}
        (s_mu, s_lv), (z_mu, z_lv) = self.encode(ids, keep)
        style = s_mu + torch.randn_like(s_mu) * (0.5 * s_lv).exp() if self.training else s_mu
        z = z_mu + torch.randn_like(z_mu) * (0.5 * z_lv).exp() if self.training else z_mu
        lkeep = self.span_keep(keep)
        lk = lkeep.to(z_mu.dtype)
        theory, parts = self.theory_embedding(ids)
        # Diffusion on the latent means (detached: the denoiser follows the autoencoder).
        x0 = z_mu.detach()
        t = self.schedule.sample_timesteps(x0.shape[0], device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.schedule.add_noise(x0, noise, t)
        th, st = self._drop_cond(theory, style if cfg.style_from_denoiser else style.detach())
        out = self.denoise(x_t, t, {"theory": th, "style": st, "keep": lkeep})
        err = ((out.float() - self.schedule.target(x0, noise, t, cfg.prediction)) ** 2).mean(-1)
        diff = (err * lk).sum() / lk.sum().clamp_min(1.0)
        z = self._generation_latents(z, x_t, out, t)
        dkeep = lkeep
        if self.training and cfg.latent_dropout > 0:  # some samples decode from the style and tokens alone
            dkeep = lkeep & (torch.rand(lkeep.shape[0], 1, device=lkeep.device) >= cfg.latent_dropout)
        logits = self.decode_logits(self._drop_tokens(ids[:, :-1]), z, style, dkeep, theory=th)
        recon = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tgt.reshape(-1), ignore_index=-100)
        kl_dims = kl_normal(s_mu, s_lv)  # (B, style_dim)
        kl = kl_dims.sum(-1).mean()
        kl_charged = kl_dims.mean(0).clamp_min(cfg.style_free_bits).sum()  # free bits (Kingma et al. 2016)
        latent_kl = (kl_normal(z_mu, z_lv).sum(-1) * lk).sum() / lk.sum().clamp_min(1.0) / cfg.latent_dim
        orth = orthogonality_loss(parts, lkeep)
        total = (cfg.w_recon * recon + cfg.w_diff * diff + self.scalars.get("kl_weight", 1.0) * cfg.w_kl * kl_charged
                 + cfg.w_orth * orth + cfg.w_latent_kl * latent_kl)
        return {"loss": total, "recon": recon, "diffusion": diff, "kl": kl, "orth": orth, "latent_kl": latent_kl}

    def training_step(self, batch) -> StepOutput:
        ids, keep = batch["input_ids"], batch["attention_mask"]
        parts = self.losses(ids, keep, batch.get("pianist"))
        n = int(keep[:, 1:].sum())
        return StepOutput(parts["loss"], {k: float(v.detach()) for k, v in parts.items() if k != "loss"}, n)

    @torch.no_grad()
    def validation_step(self, batch) -> StepOutput:
        """The training losses, ``bits_per_token`` (with the window's own latents: it
        has seen the future) and ``prefix_bits_per_token``: the second half of each
        window given the first as continuation writes it (prefix latents encoded
        alone, the rest sampled from the prior; DDIM-10, no guidance, seed 0) — the
        generation metric a run can select its best checkpoint by
        (``train.best_metric: val/prefix_bits_per_token``)."""
        from .generate import GenerationPipeline, Sampling

        ids, keep = batch["input_ids"], batch["attention_mask"]
        parts = self.losses(ids, keep, batch.get("pianist"))
        n = int(keep[:, 1:].sum())
        m = {k: float(v) for k, v in parts.items() if k != "loss"}
        m["bits_per_token"] = m["recon"] / 0.6931471805599453
        prefix = self.config.n_latents // 2 * self.config.span
        pipe = GenerationPipeline(self, device=ids.device, sampling=Sampling(steps=10, guidance=1.0))
        nll, _ = pipe.continuation_nll(ids.masked_fill(~keep, pipe.tok.vocab.pad_id), prefix, seed=0)
        m["prefix_bits_per_token"] = float(nll.mean()) / 0.6931471805599453 if len(nll) else float("nan")
        return StepOutput(parts["loss"], m, n)
