"""Expressive performance tokenizer: Performance <-> token ids, fully vectorised.

Encoding: every time is rounded to the ``time_step_ms`` grid (so each onset and
offset is off by at most half a step). Events are ordered by time and, within a
time step, SUSTAIN_OFF, NOTE_OFFs, SUSTAIN_ON, then (VELOCITY, NOTE_ON[,
DURATION...]) by pitch. Gaps become TIME_SHIFT tokens relative to the previous
event (the first gap is measured from time 0, so absolute timing is kept).

Decoding accepts any id sequence: invalid events are dropped and counted in a
:class:`DecodeReport`, never raised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from ..errors import TokenizerError
from ..performance import MAX_SPAN_SECONDS, PEDAL_DTYPE, Performance, disjoint_same_pitch, make_notes
from .config import TokenizerConfig
from .grammar import Grammar
from .vocab import (
    DURATION, NOTE_OFF, NOTE_ON, SHIFT, SUSTAIN_OFF, SUSTAIN_ON, VELOCITY, Vocabulary,
)

#: ``StreamState.end`` of a note whose release is not known yet.
OPEN = np.iinfo(np.int64).max

# Order of event kinds within one time step.
_PRIO_PEDAL_OFF, _PRIO_NOTE_OFF, _PRIO_PEDAL_ON, _PRIO_NOTE_ON = range(4)  # x128 + pitch


@dataclass
class StreamState:
    """Where a token stream stands after its last token, read by the decoder's own
    rules (what constrained generation continues from). Arrays are per pitch
    (index = pitch - ``pitch_min``)."""

    time: int                 # the time step reached
    sounding: np.ndarray      # (P,) bool: notes started and not yet released
    on_time: np.ndarray       # (P,) int: their onset steps
    end: np.ndarray           # (P,) int: release step from DURATION tokens; OPEN while unknown
    pedal: bool               # sustain pedal down
    last_on: int              # pitch index of a NOTE_ON whose DURATION tokens may still follow, else -1
    last_id: Optional[int]    # the last token (None for an empty stream)


@dataclass
class DecodeReport:
    """What the decoder dropped or repaired (all zeros for a well-formed sequence)."""

    invalid_ids: int = 0          # ids outside the vocabulary, or PAD/SOS/MASK mid-sequence
    note_on_without_velocity: int = 0
    dangling_velocity: int = 0    # VELOCITY not followed by NOTE_ON
    orphan_note_off: int = 0      # NOTE_OFF for a pitch that is not sounding
    retriggered_note: int = 0     # NOTE_ON for a sounding pitch (previous note closed)
    unclosed_note: int = 0        # note still sounding at the end (closed there)
    orphan_duration: int = 0      # DURATION not after NOTE_ON/DURATION
    note_without_duration: int = 0
    zero_length_note: int = 0     # closed in the step it opened (lengthened to one step)
    redundant_pedal: int = 0      # SUSTAIN_ON while down / SUSTAIN_OFF while up

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total"] = self.total
        return d


def velocity_to_bin(velocity: np.ndarray, bins: int) -> np.ndarray:
    """Map MIDI velocity 0..127 to 0..bins-1 with equal-width bins over 0..127."""
    v = np.clip(np.asarray(velocity, dtype=np.int64), 0, 127)
    return (v * bins) // 128


def bin_to_velocity(b: np.ndarray, bins: int) -> np.ndarray:
    """The centre of each velocity bin (at least 1, so a note is never silent)."""
    b = np.asarray(b, dtype=np.int64)
    lo = (b * 128 + bins - 1) // bins          # smallest velocity in the bin
    hi = ((b + 1) * 128 + bins - 1) // bins - 1  # largest velocity in the bin
    return np.maximum((lo + hi) // 2, 1)


class PerformanceTokenizer:
    """Turns a :class:`Performance` into token ids and back.

    >>> tok = PerformanceTokenizer()
    >>> ids = tok.encode(performance)
    >>> restored = tok.decode(ids)
    """

    def __init__(self, config: Optional[TokenizerConfig] = None):
        self.config = config or TokenizerConfig()
        self.vocab = Vocabulary(self.config)
        self.grammar = Grammar(self.vocab)
        # Smallest unsigned dtype that holds every id (stores use it on disk).
        self.id_dtype = np.uint16 if self.vocab.size <= 65536 else np.uint32

    def __len__(self) -> int:
        return self.vocab.size

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    def __repr__(self) -> str:
        return f"PerformanceTokenizer(vocab_size={self.vocab.size}, config={self.config})"

    # ---------------------------------------------------------------- encoding
    def encode(self, performance: Performance, *, sos: bool = True, eos: bool = True) -> np.ndarray:
        """Token ids (int64, 1-D) of a performance.

        Notes outside pitch_min..pitch_max are left out; same-pitch notes that
        overlap on the time grid are made disjoint (the earlier one ends where
        the next begins), as a piano would play them.
        """
        c, v = self.config, self.vocab
        if performance.end > MAX_SPAN_SECONDS:  # the shifts of a longer silence would fill memory
            raise TokenizerError(f"the performance spans {performance.end:.4g} s (> 24 h); split it first")
        notes = performance.notes
        step = c.time_step
        pitch = notes["pitch"]
        inr = (pitch >= c.pitch_min) & (pitch <= c.pitch_max)
        if not inr.all():
            notes = notes[inr]
            pitch = notes["pitch"]
        q_on = np.maximum(np.rint(notes["onset"] / step).astype(np.int64), 0)
        q_off = np.maximum(np.rint(notes["offset"] / step).astype(np.int64), q_on + 1)
        vel = notes["velocity"]
        if c.release == "note_off" and len(pitch) > 1:
            keep, q_off, vel = disjoint_same_pitch(pitch, q_on, q_off, vel)
            if len(keep) < len(pitch):
                q_on, pitch = q_on[keep], pitch[keep]
        pitch = pitch.astype(np.int64)
        n = len(pitch)

        # Events: time step, priority and pitch (the sort key), one or two fixed tokens.
        ev_time = [q_on]
        ev_order = [_PRIO_NOTE_ON * 128 + pitch]
        tok0 = [v.velocity.start + velocity_to_bin(vel, c.velocity_bins)]
        tok1 = [v.note_on.start + pitch - c.pitch_min]
        if c.release == "note_off":
            ev_time.append(q_off)
            ev_order.append(_PRIO_NOTE_OFF * 128 + pitch)
            tok0.append(v.note_off.start + pitch - c.pitch_min)
        if c.sustain and performance.pedals.size:
            qd, qu = self._pedal_steps(performance.pedal_intervals())
            k = len(qd)
            ev_time += [qd, qu]
            ev_order += [np.full(k, _PRIO_PEDAL_ON * 128), np.full(k, _PRIO_PEDAL_OFF * 128)]
            tok0 += [np.full(k, v.sustain_on_id), np.full(k, v.sustain_off_id)]
        t = np.concatenate(ev_time)
        # Note-ons come first and are already in time order, so the sort sees long runs.
        order = np.argsort(t * 512 + np.concatenate(ev_order), kind="stable")
        t = t[order]
        tok0 = np.concatenate(tok0)[order]
        is_on = order < n  # which events are note-ons (they carry a second token)
        on_rank = order[is_on]  # note index of each note-on event, in event order

        delta = np.empty_like(t)
        if len(t):
            delta[0] = t[0]
            np.subtract(t[1:], t[:-1], out=delta[1:])
        n_shift = (delta > 0).astype(np.int64)
        long_gap = delta > c.max_shift_steps  # rare: avoid integer division for the rest
        if long_gap.any():
            n_shift[long_gap] = -(-delta[long_gap] // c.max_shift_steps)
        count = n_shift + 1 + is_on
        if c.release == "duration":
            dur = (q_off - q_on)[on_rank]
            n_dur = -(-dur // c.max_duration_steps)
            count[is_on] += n_dur
        ends = np.cumsum(count)
        total = int(ends[-1]) if len(ends) else 0
        head = int(sos)
        out = np.full(head + total + int(eos), v.shift.stop - 1, dtype=np.int64)  # longest shift
        if sos:
            out[0] = v.sos_id
        if eos:
            out[-1] = v.eos_id
        if not total:
            return out
        # Each event's gap: full-length shifts (the fill value) then the remainder.
        p0 = head + ends - count + n_shift  # position of each event's first token
        has_shift = n_shift > 0
        rem = delta - (n_shift - 1) * c.max_shift_steps
        out[p0[has_shift] - 1] = v.shift.start + rem[has_shift] - 1
        out[p0] = tok0
        p_on = p0[is_on] + 1
        out[p_on] = np.concatenate(tok1)[on_rank]
        if c.release == "duration":
            # DURATION tokens: full-length ones, then the remainder last.
            full = n_dur - 1
            if full.any():
                idx = np.repeat(p_on + 1 - np.cumsum(full) + full, full) + np.arange(int(full.sum()))
                out[idx] = v.duration.stop - 1
            out[p_on + n_dur] = v.duration.start + dur - full * c.max_duration_steps - 1
        return out

    def _pedal_steps(self, intervals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quantised (down, up) steps: presses shorter than a step last one step,
        and presses that then overlap are merged."""
        step = self.config.time_step
        qd = np.maximum(np.rint(intervals[:, 0] / step).astype(np.int64), 0)
        qu = np.maximum(np.rint(intervals[:, 1] / step).astype(np.int64), qd + 1)
        if len(qd) > 1:
            reach = np.maximum.accumulate(qu)
            new = np.concatenate(([True], qd[1:] >= reach[:-1]))
            starts = np.flatnonzero(new)
            qd, qu = qd[starts], np.maximum.reduceat(qu, starts)
        return qd, qu

    # ---------------------------------------------------------------- decoding
    def decode(self, ids, *, return_report: bool = False, metadata: Optional[dict] = None):
        """A Performance from any id sequence; with ``return_report`` also a DecodeReport.

        Decoding stops at the first EOS after the start; a leading SOS and SEG
        markers are ignored; everything the grammar does not allow is dropped
        and counted.
        """
        c = self.config
        rep = DecodeReport()
        ids, types, values, time = self._events(ids)
        structural = (types == SHIFT) | (types == VELOCITY) | (types == NOTE_ON) | (
            types == NOTE_OFF) | (types == DURATION) | (types == SUSTAIN_ON) | (
            types == SUSTAIN_OFF) | (types == 4)  # SEG is allowed and ignored
        rep.invalid_ids = int((~structural).sum())
        end_time = int(time[-1]) if time.size else 0

        on_pos = np.flatnonzero(types == NOTE_ON)
        # Velocity: the most recent VELOCITY token, required right before NOTE_ON.
        vel_pos = np.flatnonzero(types == VELOCITY)
        prev_is_vel = np.zeros(on_pos.shape, dtype=bool)
        has_prev = on_pos > 0
        prev_is_vel[has_prev] = types[on_pos[has_prev] - 1] == VELOCITY
        rep.note_on_without_velocity = int((~prev_is_vel).sum())
        nxt = np.full(vel_pos.shape, -1, dtype=np.int64)
        ok_next = vel_pos + 1 < len(types)
        nxt[ok_next] = types[vel_pos[ok_next] + 1]
        rep.dangling_velocity = int((nxt != NOTE_ON).sum())
        last_vel = np.searchsorted(vel_pos, on_pos, side="right") - 1
        default_bin = c.velocity_bins // 2
        vbin = np.where(last_vel >= 0, values[vel_pos[np.maximum(last_vel, 0)]] if vel_pos.size
                        else default_bin, default_bin)
        on_pitch = values[on_pos]
        on_time = time[on_pos]

        if c.release == "note_off":
            onset, offset, pitch, keep_on, _ = self._pair_note_off(types, values, time, on_pos, end_time, rep)
            vbin = vbin[keep_on]
        else:
            onset, offset, pitch, keep_on = self._durations(types, values, on_pos, on_time, on_pitch, rep)
            vbin = vbin[keep_on]
        zero = offset <= onset
        rep.zero_length_note = int(zero.sum())
        offset = np.where(zero, onset + 1, offset)
        s = c.time_step
        notes = make_notes(onset * s, offset * s, pitch, bin_to_velocity(vbin, c.velocity_bins))
        pedals = self._pedals(types, time, rep)
        perf = Performance(notes, pedals, metadata or {})
        return (perf, rep) if return_report else perf

    def _events(self, ids):
        """``(ids, types, values, time)`` of a stream: a leading SOS dropped, cut at
        the first EOS, invalid ids typed -1; ``time`` is each token's time step."""
        v = self.vocab
        ids = np.asarray(ids).reshape(-1)
        if ids.dtype.kind not in "iu":
            if ids.dtype.kind not in "fb" or (ids.size and not np.all(np.floor(ids) == ids)):
                raise TokenizerError(f"token ids must be whole numbers, got {ids.dtype} values "
                                     f"such as {ids.reshape(-1)[:3].tolist()}")
            ids = ids.astype(np.int64)
        ids = ids.astype(np.int64, copy=False)
        if ids.size and ids[0] == v.sos_id:
            ids = ids[1:]
        eos_at = np.flatnonzero(ids == v.eos_id)
        if eos_at.size:
            ids = ids[: eos_at[0]]
        inv = (ids < 0) | (ids >= v.size)
        types = np.full(ids.shape, -1, dtype=np.int64)
        types[~inv] = v.type_of[ids[~inv]]
        values = np.zeros(ids.shape, dtype=np.int64)
        values[~inv] = v.value_of[ids[~inv]]
        time = np.cumsum(np.where(types == SHIFT, values, 0))  # (L,) time step of each token
        return ids, types, values, time

    def stream_state(self, ids) -> StreamState:
        """The state at the end of ``ids`` by the decoder's rules: a NOTE_ON sounds
        until the next event of its pitch (NOTE_OFF release) or for its DURATION
        tokens' total (DURATION release); the last pedal event holds."""
        c = self.config
        ids, types, values, time = self._events(ids)
        P = c.pitch_max - c.pitch_min + 1
        now = int(time[-1]) if time.size else 0
        sounding, on_time, end = np.zeros(P, bool), np.zeros(P, np.int64), np.full(P, OPEN, np.int64)
        on_pos = np.flatnonzero(types == NOTE_ON)
        rep = DecodeReport()
        last_on = -1
        if c.release == "note_off":
            onset, _, pitch, _, unclosed = self._pair_note_off(types, values, time, on_pos, now, rep)
            sounding[pitch[unclosed] - c.pitch_min] = True
            on_time[pitch[unclosed] - c.pitch_min] = onset[unclosed]
        else:
            onset, offset, pitch, _ = self._durations(types, values, on_pos, time[on_pos], values[on_pos], rep)
            live = offset > now  # in stream order: a later note of a pitch overrides an earlier one
            sounding[pitch[live] - c.pitch_min] = True
            on_time[pitch[live] - c.pitch_min] = onset[live]
            end[pitch[live] - c.pitch_min] = offset[live]
            lead = np.flatnonzero(types != DURATION)
            if lead.size and types[lead[-1]] == NOTE_ON:  # its DURATION tokens may go on
                last_on = int(values[lead[-1]]) - c.pitch_min
                if lead[-1] == len(types) - 1:  # none yet: sounding, release unknown
                    sounding[last_on], on_time[last_on], end[last_on] = True, now, OPEN
        ped = np.flatnonzero((types == SUSTAIN_ON) | (types == SUSTAIN_OFF))
        return StreamState(now, sounding, on_time, end, bool(ped.size and types[ped[-1]] == SUSTAIN_ON), last_on,
                           int(ids[-1]) if ids.size else None)

    def _pair_note_off(self, types, values, time, on_pos, end_time, rep):
        off_pos = np.flatnonzero(types == NOTE_OFF)
        pos = np.concatenate([on_pos, off_pos])
        is_on = np.concatenate([np.ones(len(on_pos), bool), np.zeros(len(off_pos), bool)])
        idx_on = np.concatenate([np.arange(len(on_pos)), np.full(len(off_pos), -1)])
        pitch = values[pos]
        order = np.lexsort((pos, pitch))  # by pitch, then stream position
        pos, is_on, pitch, idx_on = pos[order], is_on[order], pitch[order], idx_on[order]
        same_next = np.zeros(len(pos), bool)
        same_next[:-1] = pitch[1:] == pitch[:-1]
        nxt_on = np.zeros(len(pos), bool)
        nxt_on[:-1] = is_on[1:]
        prev_on_same = np.zeros(len(pos), bool)
        prev_on_same[1:] = same_next[:-1] & is_on[:-1]
        # An ON closes at the next same-pitch event (an OFF, or a re-strike); else at the end.
        closes = np.full(len(pos), end_time, dtype=np.int64)
        closes[:-1] = np.where(same_next[:-1], time[pos[1:]], end_time)
        ons = is_on
        rep.retriggered_note = int((ons & same_next & nxt_on).sum())
        rep.unclosed_note = int((ons & ~same_next).sum())
        rep.orphan_note_off = int((~is_on & ~prev_on_same).sum())
        sel = np.flatnonzero(ons)
        keep_on = idx_on[sel]
        onset = time[pos[sel]]
        offset = closes[sel]
        # Return in stream order of the NOTE_ONs (and which of them no event closed).
        back = np.argsort(keep_on, kind="stable")
        return onset[back], offset[back], pitch[sel][back], keep_on[back], (~same_next[sel])[back]

    def _durations(self, types, values, on_pos, on_time, on_pitch, rep):
        is_dur = types == DURATION
        # Each non-DURATION token leads a group; group 0 holds DURATIONs before any leader.
        group = np.cumsum(~is_dur)
        leader_type = np.concatenate(([-1], types[~is_dur]))
        dur_sum = np.bincount(group[is_dur], weights=values[is_dur], minlength=len(leader_type))
        dur_sum = dur_sum.astype(np.int64)
        if is_dur.any():
            rep.orphan_duration = int((leader_type[group[is_dur]] != NOTE_ON).sum())
        d = dur_sum[group[on_pos]] if on_pos.size else np.zeros(0, np.int64)
        has = d > 0
        rep.note_without_duration = int((~has).sum())
        keep_on = np.flatnonzero(has)
        return on_time[has], on_time[has] + d[has], on_pitch[has], keep_on

    def _pedals(self, types, time, rep) -> np.ndarray:
        ped = np.flatnonzero((types == SUSTAIN_ON) | (types == SUSTAIN_OFF))
        if not ped.size:
            return np.empty(0, PEDAL_DTYPE)
        down = types[ped] == SUSTAIN_ON
        prev = np.concatenate(([False], down[:-1]))
        change = down != prev
        rep.redundant_pedal = int((~change).sum())
        out = np.empty(int(change.sum()), PEDAL_DTYPE)
        out["time"] = time[ped[change]] * self.config.time_step
        out["value"] = np.where(down[change], 127, 0)
        return out

    # ---------------------------------------------------------------- helpers
    def token_names(self, ids) -> list[str]:
        return [self.vocab.token_name(i) for i in np.asarray(ids).reshape(-1)]

    def grammar_errors(self, ids) -> int:
        """First-order grammar violations plus the decoder's state errors."""
        ids = np.asarray(ids).reshape(-1)
        _, rep = self.decode(ids, return_report=True)
        return int(self.grammar.violations(ids).size) + rep.total - rep.invalid_ids
