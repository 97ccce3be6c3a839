"""Neural assessors, small by design (the seed's lesson: well under 20M parameters).

* ``note-transformer`` — a transformer over the performance's notes
  (:func:`~.inputs.note_matrix`): pitch embedding + projected expressive values +
  a sinusoidal code of onset time; masked mean pooling.
* ``ast`` — an Audio-Spectrogram-Transformer over the piano-roll image
  (:func:`~.inputs.render_roll`) cut into 16x16 patches, with factorised
  (pitch band, time) position embeddings and padding masks.
* ``ast-fine`` — the AST over a roll of 25 ms frames instead of 100 ms (6.4 s
  windows): a 16-frame patch spans 0.4 s, so chord asynchrony and small timing
  deviations show inside one patch.
* ``ast-ssast`` — the AST initialised from self-supervised pretraining (SSAST's
  masked-patch discriminative + reconstruction objectives, 15% of the patches)
  on unlabelled piano MIDI: PiJAMA's train split and PercePiano's segments
  without their ratings (:func:`pretrain_ssast`).
* ``hybrid`` / ``hybrid-ast`` — either encoder's embedding fused with the
  hand-crafted features (:mod:`.features`) before the rating head;
  ``hand-mlp`` is the fusion head on the hand features alone (the ablation).

All train through the one :class:`~tatumflow.training.Trainer` with a
correlation-aware loss: MSE on standardised ratings plus ``pearson_weight``
times (1 - the batch Pearson r, averaged over the 19 dimensions).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import TatumFlowError
from ..models.protocol import StepOutput
from ..utils import seeded_torch
from .inputs import FRAME_S, NOTE_FEATURES, ROLL_H, SCORE_NOTE_FEATURES, NoteArrays, note_matrix, render_roll


@dataclass
class AssessorNetConfig:
    input: str = "notes"          # notes | roll | none (hand features only)
    score_notes: bool = False     # notes: each note's deviations from the score join its row
    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    dropout: float = 0.1
    max_notes: int = 128          # longer segments: random crops in training, chunk average when rating
    roll_frames: int = 256        # 25.6 s at 100 ms (likewise)
    frame_s: float = FRAME_S      # piano-roll frame; finer frames show timing (0.025: 6.4 s windows of 256)
    patch: int = 16
    n_hand: int = 0               # > 0: fuse this many hand-crafted features (hybrid)
    pearson_weight: float = 0.5
    mask_ratio: float = 0.0       # > 0: SSAST masked-patch pretraining instead of ratings
    ssast_mse_weight: float = 10.0  # SSAST: reconstruction weight next to the discriminative loss
    n_out: int = 19

    def __post_init__(self) -> None:
        if self.input not in ("notes", "roll", "none"):
            raise TatumFlowError(f"assessor input must be notes, roll or none, got {self.input!r}")
        if self.input == "none" and self.n_hand <= 0:
            raise TatumFlowError("an assessor without a note or roll encoder needs hand features (n_hand > 0)")
        if self.d_model % self.n_heads:
            raise TatumFlowError(f"d_model {self.d_model} must divide by n_heads {self.n_heads}")
        if self.score_notes and self.input != "notes":
            raise TatumFlowError("score_notes needs the note input")
        if self.mask_ratio and self.input != "roll":
            raise TatumFlowError("masked-patch pretraining needs the piano-roll input")
        if self.roll_frames % self.patch or ROLL_H % self.patch:
            raise TatumFlowError(f"roll size ({ROLL_H}, {self.roll_frames}) must divide by the patch {self.patch}")

    def to_dict(self) -> dict:
        return asdict(self)


def _encoder(cfg: AssessorNetConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, 4 * cfg.d_model, cfg.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)


def time_code(t: torch.Tensor, d: int) -> torch.Tensor:
    """Sinusoidal code of times in seconds, periods from 50 ms to ~100 s."""
    k = torch.arange(d // 2, device=t.device, dtype=torch.float32)
    w = 2 * math.pi / (0.05 * (2000.0 ** (k / max(1, d // 2 - 1))))
    a = t.float()[..., None] * w
    return torch.cat([a.sin(), a.cos()], -1)


def masked_mean(h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    w = keep.to(h.dtype)[..., None]
    return (h * w).sum(1) / w.sum(1).clamp_min(1.0)


class NoteEncoder(nn.Module):
    def __init__(self, cfg: AssessorNetConfig):
        super().__init__()
        self.pitch = nn.Embedding(128, cfg.d_model)
        # every column but the pitch (embedded) and the onset time (a sinusoidal code)
        self.cols = [1, 2, 3, 5] + (list(range(NOTE_FEATURES, NOTE_FEATURES + SCORE_NOTE_FEATURES))
                                    if cfg.score_notes else [])
        self.values = nn.Linear(len(self.cols), cfg.d_model)
        self.time = nn.Linear(cfg.d_model, cfg.d_model)
        self.encoder = _encoder(cfg)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.d = cfg.d_model

    def forward(self, notes: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        L = int(n.max().clamp_min(1))
        notes = notes[:, :L]
        keep = torch.arange(L, device=notes.device)[None, :] < n[:, None]
        x = (self.pitch(notes[..., 0].long()) + self.values(notes[..., self.cols])
             + self.time(time_code(notes[..., 4], self.d)))
        h = self.encoder(x, src_key_padding_mask=~keep)
        return masked_mean(self.norm(h), keep)


class RollEncoder(nn.Module):
    """AST over the piano roll: 16x16 patches, (band, time) positions, padding masks;
    optionally replaces a random share of patches by a mask token (SSAST)."""

    def __init__(self, cfg: AssessorNetConfig):
        super().__init__()
        self.p = cfg.patch
        self.embed = nn.Conv2d(3, cfg.d_model, cfg.patch, stride=cfg.patch)
        self.band = nn.Parameter(torch.zeros(ROLL_H // cfg.patch, cfg.d_model))
        self.col = nn.Parameter(torch.zeros(cfg.roll_frames // cfg.patch, cfg.d_model))
        nn.init.trunc_normal_(self.band, std=0.02)
        nn.init.trunc_normal_(self.col, std=0.02)
        self.mask_token = nn.Parameter(torch.zeros(cfg.d_model))
        self.encoder = _encoder(cfg)
        self.norm = nn.LayerNorm(cfg.d_model)

    def patches(self, roll: torch.Tensor, frames: torch.Tensor):
        """Trim the batch to its longest roll; patch tokens (B, bands*cols, d) and their validity."""
        cols = int(torch.ceil(frames.max().float() / self.p).clamp_min(1))
        x = roll[..., : cols * self.p].float() / 127.0
        tok = self.embed(x)  # (B, d, bands, cols)
        B, d, nb, nc = tok.shape
        tok = tok.permute(0, 2, 3, 1)  # (B, bands, cols, d)
        valid_col = torch.arange(nc, device=roll.device)[None, :] * self.p < frames[:, None]
        valid = valid_col[:, None, :].expand(B, nb, nc)
        return x, tok, valid

    def forward(self, roll: torch.Tensor, frames: torch.Tensor, mask: Optional[torch.Tensor] = None):
        x, tok, valid = self.patches(roll, frames)
        B, nb, nc, d = tok.shape
        if mask is not None:
            tok = torch.where(mask[..., None], self.mask_token.to(tok.dtype), tok)
        tok = tok + self.band[None, :, None, :] + self.col[None, None, :nc, :]
        h = self.encoder(tok.reshape(B, nb * nc, d), src_key_padding_mask=~valid.reshape(B, -1))
        return self.norm(h), valid.reshape(B, -1), x


class PerceptualAssessor(nn.Module):
    """Encoder (notes, piano roll or none) [+ hand-crafted features] -> 19 ratings.

    Ratings are predicted standardised by the training set's mean and spread
    (buffers set with :meth:`set_target_stats`, saved with the weights). With
    ``mask_ratio > 0`` the model is the SSAST pretraining task instead.
    """

    family = "assessor"

    def __init__(self, config: AssessorNetConfig):
        super().__init__()
        self.config = cfg = config
        self.scalars: dict[str, float] = {}
        d = cfg.d_model
        self.notes = NoteEncoder(cfg) if cfg.input == "notes" else None
        self.roll = RollEncoder(cfg) if cfg.input == "roll" else None
        width = d if cfg.input != "none" else 0
        if cfg.n_hand:
            self.hand = nn.Sequential(nn.Linear(cfg.n_hand, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.LayerNorm(d))
            width += d
        else:
            self.hand = None
        self.head = nn.Sequential(nn.Linear(width, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, cfg.n_out))
        if cfg.mask_ratio:  # SSAST's two heads: generative (the patch's pixels), discriminative (which patch)
            self.reconstruct = nn.Linear(d, 3 * cfg.patch * cfg.patch)
            self.discriminate = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 3 * cfg.patch * cfg.patch))
        self.register_buffer("y_mean", torch.zeros(cfg.n_out))
        self.register_buffer("y_std", torch.ones(cfg.n_out))

    def set_target_stats(self, Y: np.ndarray) -> None:
        self.y_mean.copy_(torch.as_tensor(Y.mean(0), dtype=torch.float32))
        self.y_std.copy_(torch.as_tensor(Y.std(0) + 1e-3, dtype=torch.float32))

    def embed(self, batch: dict) -> torch.Tensor:
        parts = []
        if self.notes is not None:
            parts.append(self.notes(batch["notes"], batch["n_notes"]))
        if self.roll is not None:
            h, valid, _ = self.roll(batch["roll"], batch["frames"])
            parts.append(masked_mean(h, valid))
        if self.hand is not None:
            parts.append(self.hand(batch["hand"]))
        return torch.cat(parts, -1)

    def forward(self, batch: dict) -> torch.Tensor:
        """Ratings on the dataset's scale (1..7 divided by 7), (B, 19)."""
        return self.head(self.embed(batch)).float() * self.y_std + self.y_mean

    def _rating_loss(self, batch) -> StepOutput:
        z = self.head(self.embed(batch)).float()
        zy = (batch["y"].float() - self.y_mean) / self.y_std
        mse = F.mse_loss(z, zy)
        zc, yc = z - z.mean(0), zy - zy.mean(0)
        r = (zc * yc).sum(0) / (zc.norm(dim=0) * yc.norm(dim=0) + 1e-6)
        loss = mse + self.config.pearson_weight * (1.0 - r.mean())
        return StepOutput(loss, {"mse": float(mse.detach()), "batch_r": float(r.mean().detach())}, len(zy))

    def _mae_loss(self, batch) -> StepOutput:
        """SSAST (Gong et al. 2022): mask a ``mask_ratio`` share of the patches that
        hold notes, then for each masked patch (a) pick it out among the sample's
        masked patches (InfoNCE between the discriminative head's output and the
        patches' pixels) and (b) reconstruct its pixels (MSE); loss = (a) +
        ``ssast_mse_weight`` x (b), the paper's 1 : 10. Empty patches (most of a
        piano roll) are neither masked nor candidates: nothing tells them apart."""
        enc = self.roll
        x, tok, valid = enc.patches(batch["roll"], batch["frames"])
        B, nb, nc, _ = tok.shape
        p = enc.p
        target = x.reshape(B, 3, nb, p, nc, p).permute(0, 2, 4, 1, 3, 5).reshape(B, nb, nc, -1)
        full = valid & (target.abs().sum(-1) > 0)
        g = torch.rand(valid.shape, device=valid.device)
        mask = (g < self.config.mask_ratio) & full
        h, _, _ = enc(batch["roll"], batch["frames"], mask)
        h = h.reshape(B, nb, nc, -1)[mask]  # (M, d): the masked patches of the batch
        tgt = target[mask]  # (M, P)
        if len(tgt) == 0:
            zero = self.reconstruct.weight.sum() * 0.0
            return StepOutput(zero, {"masked_mse": 0.0, "masked_nce": 0.0, "masked_acc": 0.0}, 0)
        mse = ((self.reconstruct(h).float() - tgt) ** 2).mean()
        owner = torch.arange(B, device=mask.device)[:, None, None].expand(B, nb, nc)[mask]
        logits = self.discriminate(h).float() @ tgt.T  # (M, M): each masked patch vs every one
        logits = logits.masked_fill(owner[:, None] != owner[None, :], float("-inf"))  # same sample only
        labels = torch.arange(len(tgt), device=logits.device)
        nce = F.cross_entropy(logits, labels)
        acc = (logits.argmax(1) == labels).float().mean()
        loss = nce + self.config.ssast_mse_weight * mse
        return StepOutput(loss, {"masked_mse": float(mse.detach()), "masked_nce": float(nce.detach()),
                                 "masked_acc": float(acc)}, len(tgt))

    def training_step(self, batch) -> StepOutput:
        return self._mae_loss(batch) if self.config.mask_ratio else self._rating_loss(batch)

    @torch.no_grad()
    def validation_step(self, batch) -> StepOutput:
        return self.training_step(batch)


# ---------------------------------------------------------------- datasets

class SegmentDataset(torch.utils.data.Dataset):
    """Rated segments as network inputs.

    Training (``chunks=False``): ``repeats`` virtual copies of each segment, each
    with a deterministic window (a random crop where the segment is longer than
    the model's window) and a transposition in ``[-transpose, transpose]``, both
    drawn from ``(seed, index)`` so every run, and a resumed one, sees the same
    items. Rating (``chunks=True``): every segment cut into consecutive windows
    covering all of it; :func:`predict_segments` averages their ratings.
    """

    def __init__(self, arrays: Sequence[NoteArrays], rows: np.ndarray, cfg: AssessorNetConfig,
                 Y: Optional[np.ndarray] = None, hand: Optional[np.ndarray] = None, *,
                 repeats: int = 1, transpose: int = 0, seed: int = 0, chunks: bool = False):
        self.arrays, self.rows, self.cfg = arrays, np.asarray(rows), cfg
        self.Y, self.hand = Y, hand
        self.repeats, self.transpose, self.seed = repeats, transpose, seed
        self.span = cfg.roll_frames * cfg.frame_s
        self.items: Optional[list[tuple[int, float]]] = None
        if chunks:
            self.items = [(int(r), t0) for r in self.rows for t0 in self._chunk_starts(arrays[int(r)])]

    def _chunk_starts(self, a: NoteArrays) -> list[float]:
        if self.cfg.input == "notes":
            k = self.cfg.max_notes
            idx = list(range(0, max(1, len(a.onset)), k))
            idx = [i for i in idx if i == 0 or len(a.onset) - i >= k // 4]  # no tiny tail chunk
            return [float(a.onset[i]) if len(a.onset) else 0.0 for i in idx]
        if self.cfg.input == "roll":
            n = max(1, int(np.ceil((a.end - a.start) / self.span - 0.25)))
            return [a.start + j * self.span for j in range(n)]
        return [a.start]

    def __len__(self) -> int:
        return len(self.items) if self.items is not None else len(self.rows) * self.repeats

    def _window(self, i: int) -> tuple[int, float, int]:
        if self.items is not None:
            row, t0 = self.items[i]
            return row, t0, 0
        row = int(self.rows[i % len(self.rows)])
        a = self.arrays[row]
        rng = np.random.default_rng([self.seed, i])
        shift = int(rng.integers(-self.transpose, self.transpose + 1)) if self.transpose else 0
        t0 = a.start
        if self.cfg.input == "roll" and a.end - a.start > self.span:
            t0 = a.start + float(rng.uniform(0, a.end - a.start - self.span))
        elif self.cfg.input == "notes" and len(a.onset) > self.cfg.max_notes:
            t0 = float(a.onset[int(rng.integers(0, len(a.onset) - self.cfg.max_notes + 1))])
        return row, t0, shift

    def __getitem__(self, i: int) -> dict:
        row, t0, shift = self._window(i)
        a = self.arrays[row]
        item: dict = {}
        if self.cfg.input == "notes":
            m, n = note_matrix(a, t0, self.cfg.max_notes, shift, self.cfg.score_notes)
            item["notes"], item["n_notes"] = torch.from_numpy(m), torch.tensor(n)
        elif self.cfg.input == "roll":
            img, fr = render_roll(a, t0, self.cfg.roll_frames, shift, self.cfg.frame_s)
            item["roll"], item["frames"] = torch.from_numpy(img), torch.tensor(fr)
        if self.hand is not None:
            item["hand"] = torch.from_numpy(self.hand[row].astype(np.float32))
        if self.Y is not None:
            item["y"] = torch.from_numpy(self.Y[row].astype(np.float32))
        return item


class WindowDataset(torch.utils.data.Dataset):
    """Unlabelled piano-roll windows of long performances (SSAST pretraining):
    item ``i`` is a window of performance ``i % n`` at a start drawn from ``(seed, i)``."""

    def __init__(self, arrays: Sequence[NoteArrays], cfg: AssessorNetConfig, *, length: int, transpose: int = 3,
                 seed: int = 0):
        self.arrays = [a for a in arrays if len(a.onset) > 8]
        if not self.arrays:
            raise TatumFlowError("no performances with notes to pretrain on")
        self.cfg, self.length, self.transpose, self.seed = cfg, length, transpose, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        a = self.arrays[i % len(self.arrays)]
        rng = np.random.default_rng([self.seed, i])
        span = self.cfg.roll_frames * self.cfg.frame_s
        t0 = a.start + float(rng.uniform(0, max(0.0, a.end - a.start - span)))
        shift = int(rng.integers(-self.transpose, self.transpose + 1))
        img, fr = render_roll(a, t0, self.cfg.roll_frames, shift, self.cfg.frame_s)
        return {"roll": torch.from_numpy(img), "frames": torch.tensor(fr)}


# ---------------------------------------------------------------- recipes

@dataclass
class Recipe:
    """How one neural assessor trains. Rating models stop early: every
    ``eval_every`` steps they rate the fold's validation part (``val_share`` of
    its training segments, whole excerpt groups, or a protocol's own validation
    set) and keep the weights of the best mean Pearson r; ``patience``
    evaluations without a better one end the run (``steps`` is the ceiling)."""

    net: dict
    steps: int = 3000
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.05
    repeats: int = 8
    transpose: int = 2
    hand: bool = False
    pretrained: Optional[str] = None   # "ssast"
    ema: float = 0.99
    eval_every: int = 100
    patience: int = 6
    val_share: float = 0.125
    train: dict = field(default_factory=dict)


RECIPES = {
    "note-transformer": Recipe({"input": "notes"}),
    "note-transformer-score": Recipe({"input": "notes", "score_notes": True}),
    "ast": Recipe({"input": "roll"}),
    "ast-fine": Recipe({"input": "roll", "frame_s": 0.025}),
    "ast-ssast": Recipe({"input": "roll"}, pretrained="ssast"),
    "hybrid": Recipe({"input": "notes"}, hand=True),
    "hybrid-score": Recipe({"input": "notes", "score_notes": True}, hand=True),
    "hybrid-ast": Recipe({"input": "roll"}, hand=True, pretrained="ssast"),
    "hand-mlp": Recipe({"input": "none"}, hand=True, lr=1e-3),
}
NEURAL = tuple(RECIPES)

#: Network sizes (``name@size``, e.g. ``ast@2m``): encoder width / layers / heads; the
#: default is ``0.2m``. Parameters: note transformer 0.17M / 1.9M / 7.5M, AST 0.21M / 2.0M / 7.6M.
SIZES = {"0.2m": {"d_model": 64, "n_layers": 3, "n_heads": 4},
         "2m": {"d_model": 192, "n_layers": 4, "n_heads": 6},
         "8m": {"d_model": 384, "n_layers": 4, "n_heads": 8}}

#: What an SSAST encoder and the rating model that loads it must share.
ENCODER_SHAPE = ("d_model", "n_layers", "n_heads", "patch", "roll_frames", "frame_s")

SSAST_RECIPE = Recipe({"input": "roll", "mask_ratio": 0.15, "dropout": 0.0}, steps=1500, lr=5e-4, weight_decay=0.05)


def recipe_for(name: str, overrides: Optional[dict] = None) -> tuple[str, Recipe]:
    """``(base name, Recipe)`` of ``name`` or ``name@size`` (:data:`SIZES`), with
    ``overrides`` (Recipe fields; ``net`` is merged into the network's)."""
    base, _, size = name.partition("@")
    if base not in RECIPES:
        raise ValueError(f"unknown neural assessor {base!r}; available: {', '.join(RECIPES)}")
    if size and size not in SIZES:
        raise ValueError(f"unknown assessor size {size!r} in {name!r}; sizes: {', '.join(SIZES)}")
    r = RECIPES[base]
    over = dict(overrides or {})
    net = {**r.net, **(SIZES[size] if size else {}), **over.get("net", {})}
    return base, replace(r, **{**over, "net": net})


def _train_config(recipe: Recipe, seed: int, steps: Optional[int] = None, *, early_stopping: bool = False,
                  checkpoints: bool = False):
    """The Trainer's config for ``recipe``; ``checkpoints``: save after every
    evaluation (a run folder that outlives the process, so a killed fit resumes)."""
    from ..training.config import TrainConfig

    steps = steps or recipe.steps
    stop = dict(eval_every=recipe.eval_every, early_stopping_metric="val/mean_r", early_stopping_mode="max",
                early_stopping_patience=recipe.patience, best_metric="val/mean_r",
                restore_best=True) if early_stopping else dict(eval_every=10**9)
    return TrainConfig(max_steps=steps, batch_size=recipe.batch_size, lr=recipe.lr, warmup_steps=max(1, steps // 10),
                       weight_decay=recipe.weight_decay, ema_decay=recipe.ema, seed=seed, log_every=max(1, steps // 10),
                       save_every=recipe.eval_every if checkpoints else 10**9, keep_last=1, tensorboard=False,
                       **stop, **recipe.train)


def _standardiser(X: np.ndarray):
    mu, sd = X.mean(0), X.std(0)
    sd = np.where(sd > 1e-9, sd, 1.0)
    return lambda Z: np.clip((Z - mu) / sd, -6, 6).astype(np.float32)


class NeuralModel:
    """A neural assessor behind the cross-validation interface: ``fit(X, Y, rows)``
    trains through the Trainer on segments ``rows`` (X: their hand features,
    used by the hybrids), stopping early by the mean Pearson r of a held-out
    validation part (:class:`Recipe`); ``predict(X, rows)`` rates segments.
    ``groups`` (one id per segment, e.g. the excerpt take groups) keeps linked
    segments on one side when the validation part is carved out of ``rows``.
    ``run_dir``: train in this folder, checkpointing after every evaluation, and
    resume from it, so a fit killed after hours goes on where it stopped (with
    the same weights as an uninterrupted fit); the caller removes it when done.
    Without it the fit trains in a temporary folder."""

    def __init__(self, name: str, arrays: Sequence[NoteArrays], seed: int = 0, *, progress: bool = False,
                 pretrained: "str | Path | None" = None, recipe: Optional[dict] = None,
                 groups: Optional[np.ndarray] = None, run_dir: "str | Path | None" = None):
        self.name, self.arrays, self.seed, self.progress = name, arrays, seed, progress
        _, self.recipe = recipe_for(name, recipe)
        self.pretrained, self.groups = pretrained, groups
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.fit_info: dict = {}
        self.earlier_seconds = 0.0  # training time of the run folder's earlier sessions (a resumed fit)

    def validation_part(self, rows: np.ndarray) -> np.ndarray:
        """Boolean mask over ``rows``: about ``val_share`` of them, whole groups,
        drawn with the model's seed."""
        rows = np.asarray(rows)
        groups = self.groups[rows] if self.groups is not None else rows
        uniq, counts = np.unique(groups, return_counts=True)
        order = np.random.default_rng([self.seed, 7]).permutation(len(uniq))
        filled = np.cumsum(counts[order])  # segments taken after each group in the drawn order
        k = int(np.searchsorted(filled, self.recipe.val_share * len(rows))) + 1  # until the share is reached
        return np.isin(groups, uniq[order[:k]])

    def fit(self, X: np.ndarray, Y: np.ndarray, rows: np.ndarray, val: Optional[np.ndarray] = None
            ) -> "NeuralModel":
        """Train on ``rows`` (``X``, ``Y``: their features and ratings). ``val``: a
        boolean mask over ``rows`` marking the validation part (default:
        :meth:`validation_part`); ``val_share=0`` in the recipe: no early stopping."""
        from ..training.trainer import Trainer
        from .metrics import pearson_per_dim

        r = self.recipe
        rows = np.asarray(rows)
        val = np.zeros(len(rows), bool) if r.val_share <= 0 else (
            self.validation_part(rows) if val is None else np.asarray(val, bool))
        if val.all():
            raise TatumFlowError("the validation part holds every training segment")
        cfg = AssessorNetConfig(**r.net, n_hand=X.shape[1] if r.hand else 0)
        with seeded_torch(self.seed):
            model = PerceptualAssessor(cfg)
        model.set_target_stats(Y[~val])
        if r.pretrained:
            shape = {k: v for k, v in r.net.items() if k in ENCODER_SHAPE}
            load_encoder(model, self.pretrained or ssast_checkpoint(net=shape, progress=self.progress))
        self.scale = _standardiser(X[~val]) if r.hand else None
        hand = self._hand(X, rows)
        Yfull = np.zeros((len(self.arrays), Y.shape[1]), np.float32)
        Yfull[rows] = Y
        ds = SegmentDataset(self.arrays, rows[~val], cfg, Yfull, hand, repeats=r.repeats, transpose=r.transpose,
                            seed=self.seed)
        def mean_r(m):  # mean Pearson r over the 19 scales on the validation part
            return {"mean_r": float(pearson_per_dim(Y[val], predict_segments(m, self.arrays, rows[val], hand)).mean())}

        evaluator = mean_r if val.any() else None
        keep = self.run_dir is not None
        with contextlib.ExitStack() as stack:
            out = self.run_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="tatumflow-assessor-"))
            trainer = Trainer(model, _train_config(r, self.seed, early_stopping=evaluator is not None,
                                                   checkpoints=keep), ds, None,
                              out_dir=out, progress=self.progress, log=lambda s: None, evaluator=evaluator)
            res = trainer.fit(resume=keep)
        self.earlier_seconds = max(0.0, res["trained_seconds"] - res["seconds"])
        model.load_state_dict(trainer.ema.shadow, strict=False)  # rate with the (best) EMA weights
        self.fit_info = {"steps": res["steps"], "stop_reason": res["stop_reason"], "val_mean_r": res["best"],
                         "train_segments": int((~val).sum()), "val_segments": int(val.sum())}
        self.model = model.eval()
        return self

    def _hand(self, X, rows):
        if self.scale is None:
            return None
        full = np.zeros((len(self.arrays), X.shape[1]), np.float32)
        full[rows] = self.scale(X)
        return full

    @torch.no_grad()
    def predict(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return predict_segments(self.model, self.arrays, rows, self._hand(X, rows))


@torch.no_grad()
def predict_segments(model: PerceptualAssessor, arrays: Sequence[NoteArrays], rows: np.ndarray,
                     hand: Optional[np.ndarray] = None, batch_size: int = 64) -> np.ndarray:
    """(len(rows), 19) ratings of whole segments: the mean over consecutive windows
    that cover each segment."""
    from torch.utils.data import default_collate

    model.eval()
    dev = next(model.parameters()).device
    rows = np.asarray(rows)
    ds = SegmentDataset(arrays, rows, model.config, None, hand, chunks=True)
    owner = np.searchsorted(rows, [r for r, _ in ds.items]) if np.all(np.diff(rows) > 0) else \
        np.array([int(np.flatnonzero(rows == r)[0]) for r, _ in ds.items])
    sums = np.zeros((len(rows), model.config.n_out))
    for s in range(0, len(ds), batch_size):
        b = default_collate([ds[i] for i in range(s, min(len(ds), s + batch_size))])
        p = model({k: v.to(dev) for k, v in b.items()}).cpu().numpy()
        np.add.at(sums, owner[s : s + len(p)], p)
    return sums / np.maximum(np.bincount(owner, minlength=len(rows)), 1)[:, None]


# ---------------------------------------------------------------- SSAST pretraining

def pijama_arrays(index: "str | Path | None" = None, split: str = "train", limit: Optional[int] = None,
                  seed: int = 0, progress: bool = False) -> list[NoteArrays]:
    """Note arrays of PiJAMA performances of one split (unlabelled pretraining data);
    unreadable files are reported and skipped."""
    import csv

    from tqdm import tqdm

    from ..midi import read_midi
    from .data import default_root

    index = Path(index) if index else default_root().parent / "pijama" / "index.csv"
    if not index.is_file():
        raise TatumFlowError(f"{index}: no PiJAMA index to pretrain on (give index=)")
    with open(index, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("split", "train") == split]
    if limit is not None and limit < len(rows):
        pick = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
        rows = [rows[i] for i in pick]
    out = []
    for r in tqdm(rows, desc=f"read PiJAMA {split}", unit="file", disable=not progress):
        path = index.parent / r["path"]
        try:
            out.append(NoteArrays.of(read_midi(path)))
        except TatumFlowError as exc:
            print(f"skipped {exc}")
    return out


def ssast_checkpoint(*, net: Optional[dict] = None, steps: Optional[int] = None, limit: int = 800,
                     percepiano: bool = True, progress: bool = False, seed: int = 0) -> Path:
    """The cached SSAST-pretrained encoder (trained on first use; keyed by its recipe
    and ``net``, the rating model's encoder shape)."""
    from ..utils import cache_dir

    steps = steps or SSAST_RECIPE.steps
    key = hashlib.sha256(repr((SSAST_RECIPE, sorted((net or {}).items()), steps, limit, percepiano, seed, 2)
                              ).encode()).hexdigest()[:12]
    out = cache_dir() / "assessment" / f"ssast-{key}"
    if (out / "final").is_dir():
        return out / "final"
    pretrain_ssast(out, net=net, steps=steps, limit=limit, percepiano=percepiano, seed=seed, progress=progress)
    return out / "final"


def pretrain_ssast(out: "str | Path", *, net: Optional[dict] = None, steps: int = 1500, limit: int = 800,
                   percepiano: bool = True, seed: int = 0, progress: bool = True,
                   arrays: Optional[Sequence[NoteArrays]] = None) -> dict:
    """SSAST pretraining of the AST encoder (``net``: encoder shape overrides) on
    unlabelled piano MIDI: ``limit`` PiJAMA train-split performances and, with
    ``percepiano``, every PercePiano segment without its ratings (or the given
    ``arrays``); writes checkpoints under ``out`` and the final one to ``out/final``."""
    from ..training.trainer import Trainer

    out = Path(out)
    r = SSAST_RECIPE
    cfg = AssessorNetConfig(**{**r.net, **(net or {})})
    with seeded_torch(seed):
        model = PerceptualAssessor(cfg)
    if arrays is None:
        arrays = pijama_arrays(limit=limit, seed=seed, progress=progress)
        if percepiano:
            from .data import load_percepiano

            arrays += [NoteArrays.of(p) for p in load_percepiano().performances(progress=progress)]
    ds = WindowDataset(arrays, cfg, length=steps * r.batch_size, seed=seed)
    trainer = Trainer(model, _train_config(r, seed, steps), ds, None, out_dir=out, progress=progress,
                      run_info={"task": "ssast-pretraining", "performances": len(arrays)})
    res = trainer.fit(resume=True)
    trainer.save("final")
    return res


def load_encoder(model: PerceptualAssessor, checkpoint: "str | Path") -> None:
    """Copy the roll encoder of an SSAST checkpoint (EMA weights) into ``model``."""
    from ..training.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint)
    state = ck["ema"] if ck["ema"] is not None else ck["model"]
    enc = {k[len("roll."):]: v for k, v in state.items() if k.startswith("roll.")}
    if model.roll is None or not enc:
        raise TatumFlowError(f"{checkpoint}: no piano-roll encoder to load")
    missing, unexpected = model.roll.load_state_dict(enc, strict=False)
    if missing or unexpected:
        raise TatumFlowError(f"{checkpoint}: encoder does not fit (missing {missing[:3]}, unexpected {unexpected[:3]})")
