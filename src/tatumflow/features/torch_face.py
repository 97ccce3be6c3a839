"""The torch face: theory features of a batch of token ids ``(B, L)``.

Decoding is batched and vectorised (no loop over tokens or rows) and follows
:meth:`PerformanceTokenizer.decode` exactly, so the features equal those of the
numpy face on the decoded performances.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..tokenizer import PerformanceTokenizer
from ..tokenizer.vocab import DURATION, EOS, NOTE_OFF, NOTE_ON, SHIFT, SUSTAIN_OFF, SUSTAIN_ON, VELOCITY
from ..tokenizer.tokenizer import bin_to_velocity
from . import core
from .backend import NumpyBackend
from .notes import NoteSet


class TorchBackend:
    """The :class:`~.backend.NumpyBackend` interface on torch tensors (float64)."""

    name = "torch"
    float = torch.float64
    int = torch.int64

    def __init__(self, device: "torch.device | str" = "cpu"):
        self.device = torch.device(device)
        self._consts: dict[int, torch.Tensor] = {}

    def const(self, a: np.ndarray) -> torch.Tensor:
        """A module-level constant table as a tensor on this device, converted once."""
        t = self._consts.get(id(a))
        if t is None:
            t = self._consts[id(a)] = torch.as_tensor(a, device=self.device)
        return t

    def _dtype(self, dtype):
        if dtype is bool:
            return torch.bool
        if dtype in (np.int64, int, torch.int64):
            return torch.int64
        return torch.float64

    def zeros(self, shape, dtype=np.float64):
        return torch.zeros(shape, dtype=self._dtype(dtype), device=self.device)

    def arange(self, n, dtype=np.int64):
        return torch.arange(n, dtype=self._dtype(dtype), device=self.device)

    def segment_sum(self, values, index, n: int):
        values = values.to(torch.float64)
        if values.dim() == 1:  # scatter_add_ is the fastest 1-D reduction on CPU
            return torch.zeros(n, dtype=torch.float64, device=values.device).scatter_add_(0, index, values)
        out = torch.zeros((n,) + tuple(values.shape[1:]), dtype=torch.float64, device=values.device)
        return out.index_add_(0, index, values)

    @staticmethod
    def row_sums(cols, row, n: int):
        """(n, len(cols)) per-row sums in one ``index_add_`` (which needs no sorted rows)."""
        vals = torch.stack([c.to(torch.float64) for c in cols], 1)
        out = torch.zeros((n, len(cols)), dtype=torch.float64, device=vals.device)
        return out.index_add_(0, row, vals)

    @staticmethod
    def xlog2x(p):
        return torch.special.xlogy(p, p) * (1.0 / math.log(2.0))

    @staticmethod
    def take(a, idx):
        return a.index_select(0, idx)

    @staticmethod
    def nonzero(mask):
        return torch.nonzero(mask).squeeze(1)

    @staticmethod
    def cumsum_rows(x):
        return torch.cumsum(x, 1)

    @classmethod
    def compress(cls, mask, *arrays):
        idx = cls.nonzero(mask)
        return tuple(a.index_select(0, idx) for a in arrays)

    @staticmethod
    def segment_count(index, n: int):
        return torch.bincount(index, minlength=n)[:n].to(torch.float64)

    def segment_max(self, values, index, n: int, fill):
        out = torch.full((n,), fill, dtype=values.dtype, device=values.device)
        return out.scatter_reduce_(0, index, values, reduce="amax", include_self=True)

    def segment_min(self, values, index, n: int, fill):
        out = torch.full((n,), fill, dtype=values.dtype, device=values.device)
        return out.scatter_reduce_(0, index, values, reduce="amin", include_self=True)

    @staticmethod
    def cumsum(x):
        return torch.cumsum(x, 0)

    @staticmethod
    def repeat(x, counts):
        return torch.repeat_interleave(x, counts)

    @staticmethod
    def searchsorted(a, v, side: str):
        return torch.searchsorted(a, v, right=side == "right")

    @staticmethod
    def stable_argsort_small(keys: torch.Tensor) -> torch.Tensor:
        """Stable argsort of small non-negative integer keys. On the CPU numpy's
        radix sort of int16 keys is ~7x faster than ``torch.argsort``; elsewhere
        torch sorts. Both give the same (stable) order."""
        small = int(keys.max()) < 32768 if keys.numel() else True
        if keys.device.type == "cpu" and small:
            return torch.from_numpy(np.argsort(keys.to(torch.int16).numpy(), kind="stable"))
        return torch.argsort(keys, stable=True)

    @staticmethod
    def argmax(x, axis: int):
        """First index of the maximum (``max`` is faster than ``argmax`` on the CPU)."""
        return torch.max(x, dim=axis).indices

    @staticmethod
    def concat_cols(xs):
        return torch.cat(xs, dim=1)

    @staticmethod
    def to_float(x):
        return x.to(torch.float64)

    @staticmethod
    def to_int(x):
        return x.to(torch.int64)

    @staticmethod
    def take_along(x, idx):
        return torch.gather(x, 1, idx[:, None])[:, 0]

    @staticmethod
    def topk2(x):
        v = torch.topk(x, 2, dim=1).values
        return v[:, 0], v[:, 1]

    @staticmethod
    def where(c, a, b):
        if not torch.is_tensor(a):
            a = torch.full_like(b, a)
        if not torch.is_tensor(b):
            b = torch.full_like(a, b)
        return torch.where(c, a, b)

    @staticmethod
    def maximum(a, b):
        return torch.clamp(a, min=b) if not torch.is_tensor(b) else torch.maximum(a, b)

    @staticmethod
    def minimum(a, b):
        return torch.clamp(a, max=b) if not torch.is_tensor(b) else torch.minimum(a, b)

    log2 = staticmethod(torch.log2)
    sqrt = staticmethod(torch.sqrt)
    clip = staticmethod(torch.clip)
    sign = staticmethod(torch.sign)
    abs = staticmethod(torch.abs)


# Token kinds the decoder tells apart; note and pedal events are the largest codes,
# so one comparison finds them.
_OTHER, _VEL, _EOS, _SUS_ON, _SUS_OFF, _NOTE_ON, _NOTE_OFF = range(7)

# Per tokenizer config, lookup tables indexed by ``id + 1`` after clamping ids to
# -1..V (so slots 0 and V+1 stand for every id outside the vocabulary): token kind,
# value, shift steps and whether the token is a DURATION; plus the velocity of each
# bin. Kept for the life of the process, so that ``TorchBackend.const`` (keyed by
# array identity) never sees a recycled id.
_TABLES: dict[str, dict[str, np.ndarray]] = {}


def _lookup_tables(tokenizer: PerformanceTokenizer) -> dict[str, np.ndarray]:
    key = tokenizer.config.hash
    if key not in _TABLES:
        v, bins = tokenizer.vocab, tokenizer.config.velocity_bins

        def pad(a, fill):
            return np.concatenate(([fill], a.astype(np.int64), [fill]))

        types = pad(v.type_of, -1)
        values = pad(v.value_of, 0)
        kind = np.full(len(types), _OTHER, np.uint8)
        for t, k in ((VELOCITY, _VEL), (EOS, _EOS), (SUSTAIN_ON, _SUS_ON), (SUSTAIN_OFF, _SUS_OFF),
                     (NOTE_ON, _NOTE_ON), (NOTE_OFF, _NOTE_OFF)):
            kind[types == t] = k
        _TABLES[key] = {
            "kind": kind, "value": values, "shift": np.where(types == SHIFT, values, 0),
            "duration": types == DURATION,
            "velocity": bin_to_velocity(np.arange(bins), bins).astype(np.float64),
        }
    return _TABLES[key]


def decode_batch(ids, tokenizer: PerformanceTokenizer, backend=None) -> NoteSet:
    """Decode ``(B, L)`` ids into a NoteSet, exactly as the tokenizer's decoder does.

    Written against the backend interface: torch tensors with a :class:`TorchBackend`
    (the default), numpy arrays with :class:`~.backend.NumpyBackend`. Only the shift
    of every token is looked up; everything else is read for the note and pedal
    events alone, found with one comparison of the token kinds.
    """
    c, v = tokenizer.config, tokenizer.vocab
    xp = backend or TorchBackend(ids.device)
    B, L = ids.shape
    tables = {k: xp.const(a) for k, a in _lookup_tables(tokenizer).items()}
    take, compress, nonzero = xp.take, xp.compress, xp.nonzero
    idx = xp.to_int(ids.reshape(-1))
    inside = idx.shape[0] == 0 or (int(idx.min()) >= 0 and int(idx.max()) < v.size)
    idx = idx + 1 if inside else xp.clip(idx, -1, v.size) + 1
    kind = take(tables["kind"], idx)
    shift = take(tables["shift"], idx)
    # Everything from the first EOS on is ignored (a leading SOS is never an EOS).
    is_eos = kind == _EOS
    if bool(is_eos.any()):
        alive = (xp.cumsum_rows(xp.to_int(is_eos.reshape(B, L))) == 0).reshape(-1)
        kind = xp.where(alive, kind, 0 * kind)
        shift = xp.where(alive, shift, 0 * shift)
    time = xp.cumsum_rows(shift.reshape(B, L)).reshape(-1)
    end_step = time.reshape(B, L)[:, -1]

    note_idx = nonzero(kind >= _NOTE_ON)                                         # ON and OFF
    note_on = take(kind, note_idx) == _NOTE_ON
    epitch = take(tables["value"], take(idx, note_idx))
    if c.release == "note_off":
        # Each NOTE_ON closes at the next ON/OFF of its pitch in its row (or the row's end).
        key = (note_idx // L) * 128 + epitch
        order = xp.stable_argsort_small(key)  # by row, pitch; then stream order
        ks = take(key, order)
        st = take(time, take(note_idx, order))
        closes = take(end_step, ks // 128)
        closes[:-1] = xp.where(ks[1:] == ks[:-1], st[1:], closes[:-1])
        close_of_event = xp.zeros(closes.shape[0], dtype=np.int64)
        close_of_event[order] = closes
        on_idx, npitch, off_step = compress(note_on, note_idx, epitch, close_of_event)
    else:
        on_idx, npitch = compress(note_on, note_idx, epitch)
    # Velocity: the encoder writes VELOCITY right before NOTE_ON (fast path) ...
    prev = xp.maximum(on_idx - 1, 0)
    first_tok = on_idx % L == 0
    direct = (take(kind, prev) == _VEL) & ~first_tok
    vbin = xp.where(direct, take(tables["value"], take(idx, prev)), c.velocity_bins // 2)
    # ... otherwise search back for the row's last VELOCITY (none before a row's first token).
    far = nonzero(~direct & ~first_tok)
    if far.shape[0]:
        vel_idx = nonzero(kind == _VEL)
        if vel_idx.shape[0]:
            on_far = take(on_idx, far)
            k = xp.searchsorted(vel_idx, on_far, "right") - 1
            kv = take(vel_idx, xp.maximum(k, 0))
            ok = (k >= 0) & (kv // L == on_far // L)
            vbin[far] = xp.where(ok, take(tables["value"], take(idx, kv)), c.velocity_bins // 2)
    on_step = take(time, on_idx)
    if c.release != "note_off":
        is_dur = take(tables["duration"], idx).reshape(B, L)
        lead = xp.cumsum_rows(xp.to_int(~is_dur)).reshape(-1)                  # group per row
        n_groups = L + 1
        dur_idx = nonzero(is_dur.reshape(-1))
        dsum = xp.segment_sum(take(tables["value"], take(idx, dur_idx)),
                              (dur_idx // L) * n_groups + take(lead, dur_idx), B * n_groups)
        d = xp.to_int(take(dsum, (on_idx // L) * n_groups + take(lead, on_idx)))
        on_idx, npitch, vbin, on_step, d = compress(d > 0, on_idx, npitch, vbin, on_step, d)
        off_step = on_step + d
    nb = on_idx // L
    off_step = xp.where(off_step <= on_step, on_step + 1, off_step)
    onset = xp.to_float(on_step) * c.time_step
    offset = xp.to_float(off_step) * c.time_step
    velocity = take(tables["velocity"], vbin)

    # Pedal: keep state changes only; pair each press with the next release.
    ped_idx = nonzero((kind >= _SUS_ON) & (kind <= _SUS_OFF))
    pb = ped_idx // L
    down = take(kind, ped_idx) == _SUS_ON
    prev = xp.zeros(down.shape[0], dtype=bool)
    prev[1:] = down[:-1] & (pb[1:] == pb[:-1])
    ped_idx, pb, down = compress(down != prev, ped_idx, pb, down)
    ptime = xp.to_float(take(time, ped_idx)) * c.time_step
    end = xp.maximum(xp.segment_max(ptime, pb, B, 0.0), xp.segment_max(offset, nb, B, 0.0))
    nxt_up = xp.zeros(down.shape[0], dtype=bool)
    nxt_up[:-1] = (~down[1:]) & (pb[1:] == pb[:-1])
    up_time = xp.maximum(take(end, pb), ptime)
    up_time[:-1] = xp.where(nxt_up[:-1], ptime[1:], up_time[:-1])
    ped_row, ped_down, ped_up = compress(down, pb, ptime, up_time)
    return NoteSet(xp, B, nb, onset, offset, npitch, velocity, end, ped_row, ped_down, ped_up)


class TheoryFeatures:
    """Callable: ``(B, L)`` token ids -> ``{family: (B, D) float tensor}`` on the ids' device.

    >>> feats = TheoryFeatures(tokenizer)(ids)   # feats["harmony"].shape == (B, 54)

    ``kernels`` picks the array library that runs the (shared) formulas: ``"torch"``
    everywhere, ``"numpy"`` (CPU tensors only: zero-copy views, and numpy's lower
    per-call cost wins on these many small irregular operations), or ``"auto"``:
    numpy for CPU tensors, torch on accelerators. All give the same numbers.
    """

    def __init__(self, tokenizer: PerformanceTokenizer, *, window: float = 1.0, kernels: str = "auto"):
        if kernels not in ("auto", "torch", "numpy"):
            raise ValueError(f"kernels must be 'auto', 'torch' or 'numpy', got {kernels!r}")
        self.tokenizer = tokenizer
        self.window = window
        self.kernels = kernels
        self.dims = {f: len(n) for f, n in core.FAMILIES.items()}
        self._backends: dict[torch.device, TorchBackend] = {}

    @torch.inference_mode()
    def __call__(self, ids: torch.Tensor, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
        if ids.dim() != 2:
            raise ValueError(f"expected token ids of shape (B, L), got {tuple(ids.shape)}")
        use_numpy = self.kernels == "numpy" or (self.kernels == "auto" and ids.device.type == "cpu")
        if use_numpy:
            if ids.device.type != "cpu":
                raise ValueError("kernels='numpy' needs token ids on the CPU")
            ns = decode_batch(ids.numpy(), self.tokenizer, NumpyBackend)
            feats = core.all_families(ns, window=self.window)
            return {k: torch.from_numpy(a).to(dtype) for k, a in feats.items()}
        xp = self._backends.setdefault(ids.device, TorchBackend(ids.device))
        ns = decode_batch(ids, self.tokenizer, xp)
        return {k: t.to(dtype) for k, t in core.all_families(ns, window=self.window).items()}
