"""Music RNN: the LSTM next-note baseline of the design document 004.

A note is (pitch, step, duration): step is the time since the previous onset,
duration its length, both in seconds. The input of each position is the seed's
``(pitch / 128, step, duration)``; three heads predict the next note's pitch
(softmax over 128), step and duration (regression, MSE plus the seed's
positive-pressure penalty). Pitch weight defaults to 0.5, the fix the seed
recommends over 0.05.

Options (seed 004): A stacked LSTM 256 -> 128 (dropout 0.3); B bidirectional
LSTM 128 (analysis only: it reads the future, so it cannot generate); C LSTM
128 + dense 64; D stacked LSTM 256 -> 128 + dense 64. Causal options train on
the next note at every position; B on the note after the window only. All are
validated on the note after the window.

Likelihood: each regression head also carries a Laplace scale in log-time
``z = log(x + 10 ms)``, fitted by its own NLL term on the detached prediction
(the MSE objective of the mean is untouched), so the model assigns a
probability to every 10 ms bin; see :func:`note_bits`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...errors import TatumFlowError
from ...utils import check_field_types
from ..protocol import StepOutput

OPTIONS = ("A", "B", "C", "D")
TIME_BIN = 0.01  # seconds: the likelihood's discretisation (the tokenizer's grid)
LOG_EPS = 0.01   # z = log(x + LOG_EPS)


@dataclass
class MusicRNNConfig:
    option: str = "A"
    seq_len: int = 50
    pitch_weight: float = 0.5
    step_weight: float = 1.0
    duration_weight: float = 1.0
    pressure: float = 10.0

    def __post_init__(self) -> None:
        check_field_types(self, TatumFlowError, prefix="model.")
        if self.option not in OPTIONS:
            raise TatumFlowError(f"Music RNN option must be one of {OPTIONS}, got {self.option!r}")
        if self.seq_len < 2:
            raise TatumFlowError(f"seq_len must be >= 2, got {self.seq_len}")

    @property
    def tokenizer(self) -> None:
        return None  # the Music RNN reads notes, not tokens

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, tokenizer=None) -> "MusicRNNConfig":
        return cls(**d)


class MusicRNN(nn.Module):
    family = "music_rnn"
    scalar_names: tuple = ()  # reads no scheduled scalar

    def __init__(self, config: MusicRNNConfig):
        super().__init__()
        self.config = config
        self.scalars: dict[str, float] = {}
        o = config.option
        self.bidirectional = o == "B"
        if o in ("A", "D"):
            self.lstm1 = nn.LSTM(3, 256, batch_first=True)
            self.drop1 = nn.Dropout(0.3)
            self.lstm2 = nn.LSTM(256, 128, batch_first=True)
            width = 128
        elif o == "B":
            self.lstm1 = nn.LSTM(3, 128, batch_first=True, bidirectional=True)
            self.drop1 = nn.Dropout(0.2)
            self.lstm2 = None
            width = 256
        else:
            self.lstm1 = nn.LSTM(3, 128, batch_first=True)
            self.drop1 = nn.Identity()
            self.lstm2 = None
            width = 128
        self.dense = nn.Sequential(nn.Linear(width, 64), nn.ReLU(), nn.Dropout(0.2)) if o in ("C", "D") else None
        width = 64 if self.dense is not None else width
        self.pitch = nn.Linear(width, 128)
        self.step = nn.Linear(width, 1)
        self.duration = nn.Linear(width, 1)
        # Laplace scales (log) of step and duration in log-time, for the likelihood.
        self.log_scale = nn.Parameter(torch.zeros(2))

    @staticmethod
    def features(notes: torch.Tensor) -> torch.Tensor:
        """(B, T, 3) notes (pitch, step s, duration s) -> the seed's inputs."""
        return torch.stack([notes[..., 0] / 128.0, notes[..., 1], notes[..., 2]], dim=-1)

    def forward(self, notes: torch.Tensor, state=None):
        """Heads for (B, T, 3) notes; for B only the last position. Returns
        ``(pitch_logits, step, duration), state``."""
        x = self.features(notes)
        s1, s2 = state if state is not None else (None, None)
        h, s1 = self.lstm1(x, s1)
        h = self.drop1(h)
        if self.lstm2 is not None:
            h, s2 = self.lstm2(h, s2)
        if self.bidirectional:
            h = h[:, -1:]
        if self.dense is not None:
            h = self.dense(h)
        return (self.pitch(h), self.step(h)[..., 0], self.duration(h)[..., 0]), (s1, s2)

    # ------------------------------------------------------------ training
    def _targets(self, notes: torch.Tensor):
        inp = notes[:, :-1]
        tgt = notes[:, 1:] if not self.bidirectional else notes[:, -1:]
        return inp, tgt

    def _losses(self, heads, tgt):
        c = self.config
        logits, step, dur = heads
        pitch_ce = F.cross_entropy(logits.reshape(-1, 128), tgt[..., 0].long().reshape(-1))
        reg = 0.0
        for pred, true, w in ((step, tgt[..., 1], c.step_weight), (dur, tgt[..., 2], c.duration_weight)):
            reg = reg + w * (F.mse_loss(pred, true) + c.pressure * F.relu(-pred).mean())
        scale_nll = _laplace_nll(step.detach(), tgt[..., 1], self.log_scale[0]).mean() + \
            _laplace_nll(dur.detach(), tgt[..., 2], self.log_scale[1]).mean()
        loss = c.pitch_weight * pitch_ce + reg + 0.01 * scale_nll
        return loss, pitch_ce

    def training_step(self, batch) -> StepOutput:
        inp, tgt = self._targets(batch["notes"])
        heads, _ = self(inp)
        loss, ce = self._losses(heads, tgt)
        return StepOutput(loss, {"pitch_ce": float(ce.detach())}, n_items=int(tgt.shape[0] * tgt.shape[1]))

    @torch.no_grad()
    def validation_step(self, batch) -> StepOutput:
        notes = batch["notes"]
        inp, tgt = notes[:, :-1], notes[:, -1:]
        heads, _ = self(inp)
        if not self.bidirectional:
            heads = tuple(h[:, -1:] for h in heads)
        loss, ce = self._losses(heads, tgt)
        logits, step, dur = heads
        acc = (logits.argmax(-1) == tgt[..., 0].long()).float().mean()
        bits = note_bits(logits[:, 0], step[:, 0], dur[:, 0], self.log_scale, tgt[:, 0]).mean()
        return StepOutput(loss, {"pitch_accuracy": float(acc), "pitch_ce": float(ce), "bits_per_note": float(bits)},
                          n_items=int(tgt.shape[0]))

    # ------------------------------------------------------------ streaming
    def check_causal(self) -> None:
        if self.bidirectional:
            raise TatumFlowError("Music RNN option B is bidirectional: it reads the future and cannot "
                                 "generate in real time; train option A, C or D for generation")


def _laplace_nll(mean_x: torch.Tensor, true_x: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    z = torch.log(true_x.clamp(min=0) + LOG_EPS)
    mu = torch.log(mean_x.clamp(min=0) + LOG_EPS)
    return (z - mu).abs() / log_b.exp() + log_b + math.log(2.0)


def _laplace_cdf(z: torch.Tensor, mu: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d = z - mu
    return torch.where(d < 0, 0.5 * torch.exp(d / b), 1 - 0.5 * torch.exp(-d / b))


def _bin_bits(pred: torch.Tensor, true: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """-log2 P(true's 10 ms bin) under Laplace(log(pred + eps), b) in log-time."""
    k = torch.round(true.clamp(min=0) / TIME_BIN)
    lo = torch.log(torch.clamp((k - 0.5) * TIME_BIN, min=0) + LOG_EPS)
    hi = torch.log((k + 0.5) * TIME_BIN + LOG_EPS)
    mu = torch.log(pred.clamp(min=0) + LOG_EPS)
    b = log_b.exp()
    p = _laplace_cdf(hi, mu, b) - torch.where(k > 0, _laplace_cdf(lo, mu, b), torch.zeros_like(mu))
    return -torch.log2(p.clamp(min=1e-12))


def note_bits(logits, step, dur, log_scale, target) -> torch.Tensor:
    """Bits to encode each target note (pitch, step, duration at 10 ms resolution):
    pitch NLL + step bin NLL + duration bin NLL. Velocity is not modelled."""
    pitch_bits = F.cross_entropy(logits, target[:, 0].long(), reduction="none") / math.log(2)
    return pitch_bits + _bin_bits(step, target[:, 1], log_scale[0]) + _bin_bits(dur, target[:, 2], log_scale[1])
