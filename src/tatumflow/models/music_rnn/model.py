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

Beyond the seed: ``velocity`` adds the note's velocity to the input and a
128-way velocity head (learned and sampled instead of a fixed 80), and
``time_bins > 0`` replaces the step and duration regressions by categorical heads
over log-spaced bins of 10 ms steps (:class:`TimeBins`), which can be sampled (a
sampled Laplace in log-time has unbounded mean: its long tail stalls the music)
and are scored exactly. Option B reads the whole window in both directions: its
backward direction's state is taken at the window's first note, after it has
read every note.
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
    velocity: bool = True           # velocity as input and a sampled head (False: the seed's fixed 80)
    velocity_weight: float = 0.25
    time_bins: int = 0              # > 0: categorical step/duration heads over this many bins
    max_time: float = 8.0           # seconds: the last time bin holds everything longer

    def __post_init__(self) -> None:
        check_field_types(self, TatumFlowError, prefix="model.")
        if self.option not in OPTIONS:
            raise TatumFlowError(f"Music RNN option must be one of {OPTIONS}, got {self.option!r}")
        if self.seq_len < 2:
            raise TatumFlowError(f"seq_len must be >= 2, got {self.seq_len}")
        if self.time_bins and not 8 <= self.time_bins <= 512:
            raise TatumFlowError(f"time_bins must be 0 (regression) or 8..512, got {self.time_bins}")
        if not 0.1 <= self.max_time <= 60:
            raise TatumFlowError(f"max_time must be 0.1..60 seconds, got {self.max_time}")

    @property
    def tokenizer(self) -> None:
        return None  # the Music RNN reads notes, not tokens

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, tokenizer=None) -> "MusicRNNConfig":
        return cls(**{"velocity": False, **d})  # saved before velocity existed: the seed's model


class TimeBins:
    """Log-spaced bins of 10 ms steps for a time value: bin 0 holds 0 (a chord),
    then bins grow by a constant ratio up to ``max_time`` (the last bin holds
    everything longer, scored as ``max_time``). Bins that hold no whole 10 ms step
    are never used."""

    def __init__(self, n: int, max_time: float):
        self.k_max = int(round(max_time / TIME_BIN))
        k = torch.arange(self.k_max + 1, dtype=torch.float64)
        pos = torch.log(k.clamp(min=1)) / math.log(self.k_max) * (n - 2)
        self.bin_of_k = torch.where(k == 0, 0, 1 + pos.floor().long().clamp(max=n - 2))  # (k_max + 1,)
        self.count = torch.bincount(self.bin_of_k, minlength=n).float()            # 10 ms steps per bin
        self.first_k = torch.full((n,), self.k_max + 1, dtype=torch.long).scatter_reduce(
            0, self.bin_of_k, torch.arange(self.k_max + 1), "amin")                # each bin's first step
        self.empty = self.count == 0

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """Bin of each time (seconds)."""
        return self.bin_of_k[torch.round(x.clamp(min=0) / TIME_BIN).long().clamp(max=self.k_max)]

    def bits(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log2 P(x's 10 ms step): the bin's probability shared evenly by its steps."""
        b = self.index(x)
        nll = F.cross_entropy(self.mask(logits).reshape(-1, logits.shape[-1]), b.reshape(-1),
                              reduction="none").reshape(b.shape)
        return nll / math.log(2) + torch.log2(self.count[b])

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.masked_fill(self.empty, float("-inf"))

    def sample(self, logits: torch.Tensor, temperature: float, gen: torch.Generator) -> float:
        """A time (seconds): a bin drawn from ``logits`` (1-D), then a 10 ms step uniformly in it."""
        probs = torch.softmax(self.mask(logits) / temperature, -1)
        b = int(torch.multinomial(probs, 1, generator=gen))
        k = int(self.first_k[b]) + int(torch.randint(int(self.count[b]), (1,), generator=gen))
        return k * TIME_BIN


class MusicRNN(nn.Module):
    family = "music_rnn"
    scalar_names: tuple = ()  # reads no scheduled scalar

    def __init__(self, config: MusicRNNConfig):
        super().__init__()
        self.config = config
        self.scalars: dict[str, float] = {}
        o = config.option
        self.bidirectional = o == "B"
        n_in = 4 if config.velocity else 3
        if o in ("A", "D"):
            self.lstm1 = nn.LSTM(n_in, 256, batch_first=True)
            self.drop1 = nn.Dropout(0.3)
            self.lstm2 = nn.LSTM(256, 128, batch_first=True)
            width = 128
        elif o == "B":
            self.lstm1 = nn.LSTM(n_in, 128, batch_first=True, bidirectional=True)
            self.drop1 = nn.Dropout(0.2)
            self.lstm2 = None
            width = 256
        else:
            self.lstm1 = nn.LSTM(n_in, 128, batch_first=True)
            self.drop1 = nn.Identity()
            self.lstm2 = None
            width = 128
        self.dense = nn.Sequential(nn.Linear(width, 64), nn.ReLU(), nn.Dropout(0.2)) if o in ("C", "D") else None
        width = 64 if self.dense is not None else width
        self.pitch = nn.Linear(width, 128)
        n_time = config.time_bins or 1
        self.step = nn.Linear(width, n_time)
        self.duration = nn.Linear(width, n_time)
        self.velocity = nn.Linear(width, 128) if config.velocity else None
        self.bins = TimeBins(config.time_bins, config.max_time) if config.time_bins else None
        # Laplace scales (log) of step and duration in log-time, for the regression heads' likelihood.
        self.log_scale = nn.Parameter(torch.zeros(2))

    def features(self, notes: torch.Tensor) -> torch.Tensor:
        """(B, T, 4) notes (pitch, step s, duration s, velocity) -> the inputs: the seed's
        (pitch / 128, step, duration), and velocity / 127 when the model reads it."""
        cols = [notes[..., 0] / 128.0, notes[..., 1], notes[..., 2]]
        if self.config.velocity:
            cols.append(notes[..., 3] / 127.0)
        return torch.stack(cols, dim=-1)

    def forward(self, notes: torch.Tensor, state=None):
        """Heads for (B, T, 4) notes; for B only the window's end. Returns ``(pitch_logits,
        step, duration, velocity_logits), state``: step and duration are seconds, or
        logits over :attr:`bins` with ``time_bins``; velocity is None without the head."""
        x = self.features(notes)
        s1, s2 = state if state is not None else (None, None)
        h, s1 = self.lstm1(x, s1)
        h = self.drop1(h)
        if self.lstm2 is not None:
            h, s2 = self.lstm2(h, s2)
        if self.bidirectional:  # forward state after the last note, backward state after the first
            half = h.shape[-1] // 2
            h = torch.cat([h[:, -1:, :half], h[:, :1, half:]], dim=-1)
        if self.dense is not None:
            h = self.dense(h)
        step, dur = self.step(h), self.duration(h)
        if self.bins is None:
            step, dur = step[..., 0], dur[..., 0]
        vel = self.velocity(h) if self.velocity is not None else None
        return (self.pitch(h), step, dur, vel), (s1, s2)

    # ------------------------------------------------------------ training
    def _targets(self, notes: torch.Tensor):
        inp = notes[:, :-1]
        tgt = notes[:, 1:] if not self.bidirectional else notes[:, -1:]
        return inp, tgt

    def _losses(self, heads, tgt):
        c = self.config
        logits, step, dur, vel = heads
        pitch_ce = F.cross_entropy(logits.reshape(-1, 128), tgt[..., 0].long().reshape(-1))
        loss = c.pitch_weight * pitch_ce
        if self.bins is not None:  # bits of the 10 ms step, in nats, less the constant in-bin part
            for pred, true, w in ((step, tgt[..., 1], c.step_weight), (dur, tgt[..., 2], c.duration_weight)):
                loss = loss + w * F.cross_entropy(self.bins.mask(pred).reshape(-1, pred.shape[-1]),
                                                  self.bins.index(true).reshape(-1))
        else:
            for pred, true, w in ((step, tgt[..., 1], c.step_weight), (dur, tgt[..., 2], c.duration_weight)):
                loss = loss + w * (F.mse_loss(pred, true) + c.pressure * F.relu(-pred).mean())
            loss = loss + 0.01 * (_laplace_nll(step.detach(), tgt[..., 1], self.log_scale[0]).mean()
                                  + _laplace_nll(dur.detach(), tgt[..., 2], self.log_scale[1]).mean())
        if vel is not None:
            loss = loss + c.velocity_weight * F.cross_entropy(vel.reshape(-1, 128), tgt[..., 3].long().reshape(-1))
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
            heads = tuple(h[:, -1:] if h is not None else None for h in heads)
        loss, ce = self._losses(heads, tgt)
        acc = (heads[0].argmax(-1) == tgt[..., 0].long()).float().mean()
        bits, vbits = self.note_bits(tuple(h[:, 0] if h is not None else None for h in heads), tgt[:, 0])
        metrics = {"pitch_accuracy": float(acc), "pitch_ce": float(ce), "bits_per_note": float(bits.mean())}
        if vbits is not None:
            metrics["velocity_bits_per_note"] = float(vbits.mean())
        return StepOutput(loss, metrics, n_items=int(tgt.shape[0]))

    def note_bits(self, heads, target: torch.Tensor):
        """``(bits, velocity bits)`` of each (N, 4) target note under (N, ...) heads: bits
        to encode pitch, step and duration at 10 ms resolution; velocity's bits apart
        (None without the head), as TatumFlow reports them."""
        logits, step, dur, vel = heads
        if self.bins is None:
            bits = note_bits(logits, step, dur, self.log_scale, target)
        else:
            bits = (F.cross_entropy(logits, target[:, 0].long(), reduction="none") / math.log(2)
                    + self.bins.bits(step, target[:, 1]) + self.bins.bits(dur, target[:, 2]))
        vbits = None
        if vel is not None:
            vbits = F.cross_entropy(vel, target[:, 3].long().clamp(0, 127), reduction="none") / math.log(2)
        return bits, vbits

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
    pitch NLL + step bin NLL + duration bin NLL (regression heads; velocity apart)."""
    pitch_bits = F.cross_entropy(logits, target[:, 0].long(), reduction="none") / math.log(2)
    return pitch_bits + _bin_bits(step, target[:, 1], log_scale[0]) + _bin_bits(dur, target[:, 2], log_scale[1])
