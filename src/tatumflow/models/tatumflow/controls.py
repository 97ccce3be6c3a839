"""The control track: what a controlled decoder is told about the music it writes.

Every ``frame`` seconds of music is described by two observable controls, read
off the music itself (so any piece, and any request, can be written as one):

* **harmony** — the frame's pitch-class profile (chroma): each note's velocity x
  duration within the frame, by onset, as the harmony features and the
  scorecard weigh notes when they read a chord (:func:`tatumflow.features.chord_sequence`),
  scaled to unit length (zero for a silent frame); a requested chord is its
  tones, the root weighted 1.5, the seventh 1.5, the third 1.25, the fifth 0.85
  (:data:`ROOT_WEIGHT`);
* **texture** — four numbers: density ``log(1 + onsets)``, register
  ``(mean pitch - 60) / 12``, loudness ``(mean velocity - 64) / 32`` and voicing
  ``log(notes per onset cluster)`` (onsets within 50 ms, as the scorecard's
  voicing size).

A model with the count control (``model.control_count``) is also told, with the
texture, where each token stands in its frame (:func:`count_inputs`): how many of
the onsets the frame asks for are still to come, whether it has them all, and how
much of the frame has gone. A decoder told only a frame's density has to count its
own notes to keep to it; told what is left, it keeps the count it is asked for. A
model with the tally control (``model.control_tally``) is told the same of the rest
of the texture (:func:`tally_inputs`): how many clusters the frame still needs, how
many notes the cluster sounding now has, and the register its remaining notes need.

A model with the pianist control is also told who plays: weights over the pianists it
knows and "another pianist" (a blend of two pianists is a blend of their weights).

Either may be unknown (not given: the decoder chooses). Each token is told the
controls of the frame its music has reached (the time after the token), so a
frame's description is known before its notes are written. In training the
controls come from the window's own music, hidden per sample and per frame at
random (the decoder learns to write with any part of the plan missing); at
generation they come from a request: a progression (edit-harmony), another
piece's harmony under a texture moved toward a style (style transfer), a blend
of two plans (interpolation), a loosened copy of a prompt's plan (improvise), or
nothing (unconditional, continuation).

Numpy only (no torch): :func:`frame_table` serves the model's batches (decoded by
:func:`tatumflow.features.torch_face.decode_batch`) and the pipeline's plans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ...features.chords import parse_chord
from ...features.notes import NoteSet, noteset_from_performances
from ...performance import Performance

TEXTURE = ("density", "register", "loudness", "voicing")
COUNT = ("left", "done", "elapsed")  # the count control's inputs (:func:`count_inputs`)
TALLY = ("clusters_left", "in_cluster", "register_left")  # the tally control's (:func:`tally_inputs`)
CLUSTER_SECONDS = 0.05           # onsets this close form one cluster (the scorecard's voicing size)


def token_seconds(ids: np.ndarray, tokenizer) -> np.ndarray:
    """Each token's time in seconds from the start of its row (the time after it:
    the sum of the time shifts up to and including it), for ids of any shape."""
    from ...tokenizer.vocab import SHIFT

    v, ids = tokenizer.vocab, np.asarray(ids)
    return np.cumsum(np.where(v.type_of[ids] == SHIFT, v.value_of[ids], 0), -1) * tokenizer.config.time_step


def token_pitches(ids: np.ndarray, tokenizer) -> np.ndarray:
    """Each token's pitch if it is a NOTE_ON, else -1 (ids of any shape): what the count
    controls read of the music written so far."""
    from ...tokenizer.vocab import NOTE_ON

    v, ids = tokenizer.vocab, np.asarray(ids)
    return np.where(v.type_of[ids] == NOTE_ON, v.value_of[ids], -1)


def _so_far(f: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per token (last axis): the sum of ``x`` over its frame's tokens up to and including
    it (``f``: each token's frame, non-decreasing along the last axis)."""
    cum = np.cumsum(x, -1)
    first = np.ones(f.shape, bool)  # the first token in each frame
    first[..., 1:] = f[..., 1:] != f[..., :-1]
    start = np.maximum.accumulate(np.where(first, np.arange(f.shape[-1]), 0), axis=-1)
    return cum - np.take_along_axis(cum, start, -1) + np.take_along_axis(x, start, -1)


def count_inputs(seconds: np.ndarray, pitch: np.ndarray, asked: np.ndarray, frame: float) -> np.ndarray:
    """The count control's inputs (..., n, 3) for tokens (last axis, in order from the
    music's start) at ``seconds`` (the time after each token), ``pitch`` >= 0 marking the
    NOTE_ONs (:func:`token_pitches`), in frames asking for ``asked`` onsets each (per
    token: its frame's): ``log(1 + onsets left)``, 1 once the frame has them (fewer than
    half an onset left), and the share of the frame gone. An onset counts in the frame of
    its time."""
    seconds = np.asarray(seconds, float)
    f = np.floor(seconds / frame + 1e-9).astype(np.int64)
    left = np.asarray(asked, float) - _so_far(f, (np.asarray(pitch) >= 0).astype(np.int64))
    return np.stack([np.log1p(np.maximum(left, 0.0)), (left < 0.5).astype(float),
                     np.clip(seconds / frame - f, 0.0, 1.0)], -1)


def tally_inputs(seconds: np.ndarray, pitch: np.ndarray, texture: np.ndarray, frame: float) -> np.ndarray:
    """The tally control's inputs (..., n, 3) for tokens as in :func:`count_inputs`, in
    frames asking for ``texture`` (per token: its frame's, (..., n, 4) as ``TEXTURE``):
    ``log(1 + clusters left)`` (the frame's onsets over its voicing size, less the
    clusters it has begun), ``log(1 + onsets in the cluster sounding now)`` (0 once the
    time has moved past it) and the register the frame's onsets still to come need for
    its mean pitch (``(pitch - 60) / 12``; the frame's own once none are left). An onset
    begins a cluster when it does not round to the previous onset's ``CLUSTER_SECONDS``
    (as :func:`frame_table` reads clusters), and counts in the frame of its time."""
    seconds = np.asarray(seconds, float)
    pitch = np.asarray(pitch)
    texture = np.asarray(texture, float)
    on = pitch >= 0
    f = np.floor(seconds / frame + 1e-9).astype(np.int64)
    q = np.round(seconds / CLUSTER_SECONDS).astype(np.int64)
    idx = np.broadcast_to(np.arange(f.shape[-1]), f.shape)
    last = np.maximum.accumulate(np.where(on, idx, -1), axis=-1)  # the last onset at or before
    before = np.full(f.shape, -1)
    before[..., 1:] = last[..., :-1]  # the last onset before
    q_before = np.take_along_axis(q, np.maximum(before, 0), -1)
    new = on & ((before < 0) | (q != q_before))
    start = np.maximum.accumulate(np.where(new, idx, -1), axis=-1)  # where the latest cluster began
    cum = np.cumsum(on, -1)
    sounding = (start >= 0) & (np.take_along_axis(q, np.maximum(last, 0), -1) == q)
    in_cluster = np.where(sounding, cum - np.take_along_axis(cum, np.maximum(start, 0), -1) + 1, 0)
    asked = np.expm1(texture[..., 0])
    clusters = asked / np.exp(texture[..., 3])
    mean = texture[..., 1] * 12.0 + 60.0
    written = _so_far(f, on.astype(np.int64))
    left = asked - written
    need = (asked * mean - _so_far(f, np.where(on, pitch, 0))) / np.maximum(left, 0.5)
    need = np.where(left >= 0.5, np.clip(need, 21.0, 108.0), mean)
    return np.stack([np.log1p(np.maximum(clusters - _so_far(f, new.astype(np.int64)), 0.0)),
                     np.log1p(in_cluster), (need - 60.0) / 12.0], -1)


def frame_table(ns: NoteSet, frame: float, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row and frame of ``frame`` seconds: the unit chroma (rows, F, 12) and the
    texture (rows, F, 4) of the notes whose onset falls in it (frames from time 0)."""
    B, F = ns.n_rows, int(n_frames)
    row, on = np.asarray(ns.row, np.int64), np.asarray(ns.onset, float)
    off, pitch = np.asarray(ns.offset, float), np.asarray(ns.pitch, np.int64)
    vel = np.asarray(ns.velocity, float)
    f = np.floor(on / frame + 1e-9).astype(np.int64)
    ok = (f >= 0) & (f < F)
    row, on, off, pitch, vel, f = row[ok], on[ok], off[ok], pitch[ok], vel[ok], f[ok]
    cell = row * F + f
    n = B * F
    w = vel / 127.0 * np.minimum(off - on, frame)
    pcp = np.bincount(cell * 12 + pitch % 12, weights=w, minlength=n * 12).reshape(n, 12)
    chroma = pcp / np.maximum(np.linalg.norm(pcp, axis=1, keepdims=True), 1e-12)
    count = np.bincount(cell, minlength=n).astype(float)
    safe = np.maximum(count, 1.0)
    mean_pitch = np.bincount(cell, weights=pitch, minlength=n) / safe
    mean_vel = np.bincount(cell, weights=vel, minlength=n) / safe
    q = np.round(on / CLUSTER_SECONDS).astype(np.int64)
    order = np.lexsort((q, row))
    r_o, q_o = row[order], q[order]
    new = np.ones(len(order), bool)
    new[1:] = (r_o[1:] != r_o[:-1]) | (q_o[1:] != q_o[:-1])
    clusters = np.bincount(cell[order], weights=new.astype(float), minlength=n)
    tex = np.stack([np.log1p(count),
                    np.where(count > 0, (mean_pitch - 60.0) / 12.0, 0.0),
                    np.where(count > 0, (mean_vel - 64.0) / 32.0, 0.0),
                    np.where(count > 0, np.log(safe / np.maximum(clusters, 1.0)), 0.0)], -1)
    return chroma.reshape(B, F, 12), tex.reshape(B, F, len(TEXTURE))


#: A requested chord's root weighs this much against its other tones (as a bass on the root
#: does). Chosen on the Art Tatum val album (8 pieces x 3 progressions, control_tatum): root /
#: root+quality accuracy 0.54 / 0.27 at 1 (equal tones), 0.65 / 0.29 at 1.5, 0.60 / 0.26 at 2;
#: the mean chroma of the frames read as each quality in Art Tatum's train albums: 0.47 / 0.31.
ROOT_WEIGHT = 1.5
#: With chroma guidance (``generate.CONTROL_GUIDANCE``) the plan is followed closely enough
#: that its balance shows. At equal weights the outputs read a requested 7 or maj7 as a
#: plain triad half the time (val: root 0.88, root+quality 0.44); the seventh at 1.25 and the
#: fifth (which tells no quality) at 0.7 gave 0.83 / 0.64, leaving two misreadings: a
#: seventh chord heard as its triad, and root + seventh heard as the sus4 chord a fourth up
#: (D-C-G read as Gsus4 under a requested Dm7). Weighting the quality tones (the third, a
#: diminished fifth) 1.25, the seventh 1.5 and the fifth 0.85, at chroma guidance 3: 0.84 /
#: 0.71 and 0.85 / 0.72 (seeds 0 and 1; ``benchmarks/control_guidance.py --chord-weights
#: R,S,F,T --seed K``, the grid in README "Control guidance").
SEVENTH_WEIGHT = 1.5
FIFTH_WEIGHT = 0.85
THIRD_WEIGHT = 1.25


def chord_chroma(symbol: str) -> np.ndarray:
    """``"Dm7"`` -> the unit chroma of its tones (12,), the root weighted ``ROOT_WEIGHT``,
    a seventh ``SEVENTH_WEIGHT``, the fifth ``FIFTH_WEIGHT``, the third and a diminished
    fifth ``THIRD_WEIGHT``, any other tone 1."""
    root, intervals = parse_chord(symbol)
    c = np.zeros(12)
    c[[(root + i) % 12 for i in intervals]] = 1.0
    c[root] = ROOT_WEIGHT
    for i in intervals:
        if i % 12 in (10, 11):
            c[(root + i) % 12] = SEVENTH_WEIGHT
        elif i % 12 == 7:
            c[(root + i) % 12] = FIFTH_WEIGHT
        elif i % 12 in (3, 4, 6):
            c[(root + i) % 12] = THIRD_WEIGHT
    return c / np.linalg.norm(c)


@dataclass
class ControlPlan:
    """A plan over frames of ``frame`` seconds from the music's time 0: the chroma
    (F, 12) and the texture (F, 4), each with a known flag per frame. Frames past
    the plan are unknown. ``pianist``: who plays it throughout, as weights over a
    pianist-controlled model's classes (None: not told)."""

    frame: float
    chroma: np.ndarray
    chroma_known: np.ndarray
    texture: np.ndarray
    texture_known: np.ndarray
    pianist: Optional[np.ndarray] = None

    @property
    def n_frames(self) -> int:
        return len(self.chroma)

    @classmethod
    def of(cls, perf: Performance, frame: float, n_frames: Optional[int] = None) -> "ControlPlan":
        """The plan a performance itself follows (every frame known)."""
        n = int(np.ceil(max(perf.end, frame) / frame)) if n_frames is None else int(n_frames)
        chroma, tex = frame_table(noteset_from_performances([perf]), frame, n)
        return cls(frame, chroma[0], np.ones(n, bool), tex[0], np.ones(n, bool))

    @classmethod
    def empty(cls, frame: float, pianist: Optional[np.ndarray] = None) -> "ControlPlan":
        """No frame known (the decoder chooses everything), only, if given, the pianist."""
        return cls(frame, np.zeros((0, 12)), np.zeros(0, bool), np.zeros((0, len(TEXTURE))), np.zeros(0, bool),
                   pianist)

    @classmethod
    def flat(cls, seconds: float, *, density: float, register: float = 60.0, loudness: float = 64.0,
             voicing: float = 1.5, frame: float = 1.0, pianist: Optional[np.ndarray] = None) -> "ControlPlan":
        """A plan asking every frame for the same texture, in a listener's units:
        ``density`` onsets a second, mean pitch ``register``, mean velocity ``loudness``
        and ``voicing`` notes per onset cluster; the harmony left to the decoder."""
        from ...errors import TatumFlowError

        if not seconds > 0:
            raise TatumFlowError(f"seconds must be > 0, got {seconds}")
        for name, value, low in (("density", density, 0.0), ("voicing", voicing, 1.0)):
            if not value >= low:
                raise TatumFlowError(f"{name} must be >= {low:g}, got {value}")
        n = int(np.ceil(seconds / frame - 1e-9))
        tex = np.tile([np.log1p(density * frame), (register - 60.0) / 12.0, (loudness - 64.0) / 32.0,
                       np.log(voicing)], (n, 1))
        return cls(frame, np.zeros((n, 12)), np.zeros(n, bool), tex, np.ones(n, bool), pianist)

    def copy(self) -> "ControlPlan":
        return ControlPlan(self.frame, self.chroma.copy(), self.chroma_known.copy(), self.texture.copy(),
                           self.texture_known.copy(), None if self.pianist is None else self.pianist.copy())

    def with_chords(self, symbols: Sequence[str], duration: float) -> "ControlPlan":
        """The plan with each frame's harmony replaced by the chord ``symbols`` asks
        for at the frame's middle (the progression spread evenly over ``duration``
        seconds, as the scorecard reads it)."""
        k = len(symbols)
        mid = (np.arange(self.n_frames) + 0.5) * self.frame
        which = np.clip((mid / max(duration, 1e-9) * k).astype(int), 0, k - 1)
        out = self.copy()
        out.chroma = np.stack([chord_chroma(s) for s in symbols])[which]
        out.chroma_known[:] = True
        return out

    def mean_texture(self) -> np.ndarray:
        """The mean texture of the known frames with notes (4,)."""
        live = self.texture_known & (self.texture[:, 0] > 0)
        return self.texture[live].mean(0) if live.any() else np.zeros(len(TEXTURE))

    def at(self, seconds, pitch=None) -> dict:
        """The controls at each time: ``chroma`` (n, 12), ``chroma_known`` (n,),
        ``texture`` (n, 4), ``texture_known`` (n,); with a pianist, ``pianist`` (n,
        classes) and ``pianist_known`` (n,); given ``pitch`` (n,: the tokens at those
        times, in order from the music's start, as :func:`token_pitches` reads them), the
        count and tally controls' ``count`` and ``tally`` (n, 3 each), known with the
        texture."""
        f = np.floor(np.asarray(seconds, float) / self.frame + 1e-9).astype(np.int64)
        inside = (f >= 0) & (f < self.n_frames)
        fi = np.where(inside, f, 0)
        out = {}
        for name in ("chroma", "texture"):
            a, known = getattr(self, name), getattr(self, name + "_known")
            x = np.zeros((len(f), a.shape[1]))
            k = np.zeros(len(f), bool)
            if self.n_frames:
                x[inside], k[inside] = a[fi[inside]], known[fi[inside]]
            out[name], out[name + "_known"] = x, k
        if self.pianist is not None:
            out["pianist"] = np.broadcast_to(self.pianist, (len(f), len(self.pianist))).copy()
            out["pianist_known"] = np.ones(len(f), bool)
        if pitch is not None:
            out["count"] = count_inputs(seconds, pitch, np.expm1(out["texture"][:, 0]), self.frame)
            out["tally"] = tally_inputs(seconds, pitch, out["texture"], self.frame)
        return out


def blend(a: ControlPlan, b: ControlPlan, alpha: float) -> ControlPlan:
    """``(1 - alpha) a + alpha b`` frame by frame over the shorter plan (the chroma
    scaled back to unit length, the pianists' weights blended too); a control known in
    one plan only is taken from it."""
    n = min(a.n_frames, b.n_frames)
    out = {}
    for name in ("chroma", "texture"):
        xa, xb = getattr(a, name)[:n], getattr(b, name)[:n]
        ka, kb = getattr(a, name + "_known")[:n], getattr(b, name + "_known")[:n]
        x = np.where((ka & kb)[:, None], (1 - alpha) * xa + alpha * xb, np.where(ka[:, None], xa, xb))
        if name == "chroma":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        out[name], out[name + "_known"] = x, ka | kb
    pa, pb = a.pianist, b.pianist
    pianist = pb if pa is None else pa if pb is None else (1 - alpha) * pa + alpha * pb
    return ControlPlan(a.frame, out["chroma"], out["chroma_known"], out["texture"], out["texture_known"], pianist)
