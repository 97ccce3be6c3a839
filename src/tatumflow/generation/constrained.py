"""Constrained token sampling: only tokens the tokenizer's grammar allows.

:class:`GrammarState` tracks, for a batch of token streams, what the
first-order grammar (:class:`~tatumflow.tokenizer.grammar.Grammar`) and the
decoder's state rules require: a NOTE_OFF only for a pitch that sounds and
started before now, no NOTE_ON of a sounding pitch, a pedal press only when the
pedal is up (and a release only when down), no special tokens mid-stream.
Two optional musical limits: ``max_polyphony`` (no new note while that many
sound) and ``max_note_steps`` (a note held that long must be released next).
:meth:`GrammarState.finish` closes what is still open, so every stream decodes
with zero grammar errors. A prompt's state comes from the decoder itself
(:meth:`~tatumflow.tokenizer.PerformanceTokenizer.stream_state`), so the two
never disagree on what sounds; the per-token updates follow the same rules,
vectorised over the batch, at a cost that does not depend on the stream length.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..tokenizer import PerformanceTokenizer
from ..tokenizer.tokenizer import OPEN
from ..tokenizer.vocab import DURATION, NOTE_OFF, NOTE_ON, SHIFT, SUSTAIN_OFF, SUSTAIN_ON, VELOCITY


class GrammarState:
    def __init__(self, tokenizer: PerformanceTokenizer, batch: int, device: "torch.device | str" = "cpu", *,
                 max_polyphony: Optional[int] = None, max_note_steps: Optional[int] = None):
        v = tokenizer.vocab
        if max_polyphony is not None and max_polyphony < 1:
            raise ValueError(f"max_polyphony must be >= 1, got {max_polyphony}")
        if max_note_steps is not None and max_note_steps < 1:
            raise ValueError(f"max_note_steps must be >= 1, got {max_note_steps}")
        self.max_polyphony, self.max_note_steps = max_polyphony, max_note_steps
        self.tok, self.v = tokenizer, v
        self.device = torch.device(device)
        self.types = torch.as_tensor(v.type_of.astype(np.int64), device=self.device)
        self.values = torch.as_tensor(v.value_of.astype(np.int64), device=self.device)
        self.matrix = torch.as_tensor(tokenizer.grammar.token_matrix(), device=self.device)
        self.generable = torch.ones(v.size, dtype=torch.bool, device=self.device)
        self.generable[: v.specials.stop] = False  # PAD, SOS, EOS, MASK, SEG are never generated mid-stream
        P = v.note_on.size
        self.p0 = tokenizer.config.pitch_min
        self.sounding = torch.zeros(batch, P, dtype=torch.bool, device=self.device)
        self.on_time = torch.zeros(batch, P, dtype=torch.long, device=self.device)
        self.end = torch.full((batch, P), OPEN, dtype=torch.long, device=self.device)  # DURATION release
        self.last_on = torch.full((batch,), -1, dtype=torch.long, device=self.device)  # open DURATION group
        self.time = torch.zeros(batch, dtype=torch.long, device=self.device)
        self.pedal = torch.zeros(batch, dtype=torch.bool, device=self.device)
        self.prev = torch.full((batch,), v.sos_id, dtype=torch.long, device=self.device)

    def feed(self, ids: torch.Tensor) -> None:
        """Start every stream from a prompt, ``ids`` (B, L) without SOS: the state
        the decoder reads at its end (:meth:`PerformanceTokenizer.stream_state`)."""
        if bool((self.time != 0).any() | (self.prev != self.v.sos_id).any()):
            raise ValueError("feed starts fresh streams; continue a stream token by token with update()")
        if ids.shape[1] == 0:
            return
        rows = [self.tok.stream_state(r) for r in ids.cpu().numpy()]

        def put(name, values, dtype):
            setattr(self, name, torch.as_tensor(np.stack(values) if np.ndim(values[0]) else np.array(values),
                                                dtype=dtype, device=self.device))

        put("sounding", [r.sounding for r in rows], torch.bool)
        put("on_time", [r.on_time for r in rows], torch.long)
        put("end", [r.end for r in rows], torch.long)
        put("time", [r.time for r in rows], torch.long)
        put("pedal", [r.pedal for r in rows], torch.bool)
        put("last_on", [r.last_on for r in rows], torch.long)
        self.prev = ids[:, -1].to(self.device)

    def update(self, tok: torch.Tensor) -> None:
        t, val = self.types[tok], self.values[tok]
        rows = torch.arange(len(tok), device=tok.device)
        self.time = self.time + torch.where(t == SHIFT, val, 0)
        pi = (val - self.p0).clamp(0, self.sounding.shape[1] - 1)
        on, off = t == NOTE_ON, t == NOTE_OFF
        self.sounding[rows[on], pi[on]] = True
        self.on_time[rows[on], pi[on]] = self.time[on]
        self.end[rows[on], pi[on]] = OPEN
        self.sounding[rows[off], pi[off]] = False
        if self.v.duration is not None:  # DURATION tokens add up to the release of their NOTE_ON
            dur = (t == DURATION) & (self.last_on >= 0)
            r, p = rows[dur], self.last_on[dur]
            e = self.end[r, p]
            self.end[r, p] = torch.where(e == OPEN, self.on_time[r, p], e) + val[dur]
            self.last_on = torch.where(on, pi, torch.where(t == DURATION, self.last_on, -1))
            self.sounding &= self.end > self.time[:, None]
        self.pedal = torch.where(t == SUSTAIN_ON, True, torch.where(t == SUSTAIN_OFF, False, self.pedal))
        self.prev = tok

    def mask(self) -> torch.Tensor:
        """(B, V) allowed next tokens."""
        v = self.v
        m = self.matrix[self.prev] & self.generable
        on = slice(v.note_on.start, v.note_on.stop)
        m[:, on] &= ~self.sounding
        if v.note_off is not None:
            off_ok = self.sounding & (self.on_time < self.time[:, None])  # no zero-length notes
            m[:, v.note_off.start : v.note_off.stop] &= off_ok
        if v.sustain is not None:
            m[:, v.sustain.start] &= ~self.pedal
            m[:, v.sustain.start + 1] &= self.pedal
        # A VELOCITY must be followed by a NOTE_ON: forbid it when no pitch is free.
        free = (~self.sounding).any(1, keepdim=True)
        if self.max_polyphony is not None:
            free = free & (self.sounding.sum(1, keepdim=True) < self.max_polyphony)
        m[:, v.velocity.start : v.velocity.stop] &= free
        if self.max_polyphony is not None:  # a NOTE_ON not announced by a VELOCITY obeys the limit too
            m[:, on] &= free | (self.types[self.prev] == VELOCITY)[:, None]
        if self.max_note_steps is not None and v.note_off is not None:
            held = self.time[:, None] - self.on_time
            left = torch.where(self.sounding, self.max_note_steps - held, self.max_note_steps).min(1).values
            sh = slice(v.shift.start, v.shift.stop)  # no time shift past a sounding note's limit
            m[:, sh] &= self.values[sh][None] <= left[:, None]
            expired = self.sounding & (held >= self.max_note_steps)
            force = expired.any(1) & (self.types[self.prev] != VELOCITY)
            if force.any():  # release the held-too-long notes before anything else
                m[force] = False
                m[force, v.note_off.start : v.note_off.stop] = expired[force]
        empty = ~m.any(1)
        if empty.any():  # cannot happen with a sane grammar; a time shift is always safe
            m[empty, v.shift.start] = True
        return m

    def finish(self) -> list[list[int]]:
        """Per stream, the tokens that close it cleanly: a one-step shift where a
        note started at the current time, then a NOTE_OFF for every sounding pitch
        and a pedal release; a dangling VELOCITY gets its NOTE_ON, a NOTE_ON
        its DURATION (DURATION release)."""
        v = self.v
        out = []
        for b in range(len(self.prev)):
            toks: list[int] = []
            if int(self.types[self.prev[b]]) == VELOCITY:  # complete the note it announces
                free = torch.nonzero(~self.sounding[b]).flatten()
                p = int(free[len(free) // 2])
                toks.append(v.note_on.start + p)
                self.sounding[b, p] = True
                self.on_time[b, p] = self.time[b]
                if v.duration is not None:
                    toks.append(v.duration.start)
            if v.duration is not None and int(self.last_on[b]) >= 0 and int(self.types[self.prev[b]]) == NOTE_ON:
                toks.append(v.duration.start)  # a NOTE_ON needs its DURATION: one step
            if v.note_off is not None and self.sounding[b].any():
                if bool((self.on_time[b][self.sounding[b]] >= self.time[b]).any()):
                    toks.append(v.shift.start)  # 1 step, so no note is zero-length
                toks += [v.note_off.start + int(p) for p in torch.nonzero(self.sounding[b]).flatten()]
            if v.sustain is not None and bool(self.pedal[b]):
                toks.append(v.sustain.start + 1)
            out.append(toks)
        return out


def filter_logits(logits: torch.Tensor, *, temperature: float = 1.0, top_k: Optional[int] = None,
                  top_p: Optional[float] = None, min_p: Optional[float] = None) -> torch.Tensor:
    """Temperature, then top-k, nucleus (top-p) and min-p filtering (``-inf`` outside)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x = logits.float() / temperature
    if top_k is not None and top_k > 0 and top_k < x.shape[-1]:
        kth = x.topk(top_k, -1).values[..., -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    if min_p is not None and min_p > 0:
        p = x.softmax(-1)
        x = x.masked_fill(p < min_p * p.max(-1, keepdim=True).values, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        srt, idx = x.sort(-1, descending=True)
        cum = srt.softmax(-1).cumsum(-1)
        drop = cum - srt.softmax(-1) > top_p  # keep the smallest set reaching top_p
        x = x.masked_fill(torch.zeros_like(drop).scatter(-1, idx, drop), float("-inf"))
    return x


def sample_next(logits: torch.Tensor, allowed: torch.Tensor, generator: Optional[torch.Generator] = None,
                **filters) -> torch.Tensor:
    """One token per row from the allowed tokens (``filters``: see :func:`filter_logits`)."""
    x = filter_logits(logits.masked_fill(~allowed, float("-inf")), **filters)
    bad = torch.isinf(x).all(-1)
    if bad.any():  # filters removed everything allowed: fall back to the best allowed token
        x[bad] = logits[bad].float().masked_fill(~allowed[bad], float("-inf"))
    p = x.softmax(-1)
    return torch.multinomial(p.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)
