"""Reading and writing MIDI files: the only module that touches MIDI bytes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import MidiReadError, MidiWriteError
from ..performance import MAX_SPAN_SECONDS, PEDAL_DTYPE, Performance, make_notes, make_pedals
from ..utils import atomic_path
from .smf import SmfInfo, scan_smf

PathLike = Union[str, os.PathLike]

#: Tempos outside this range (quarter notes per minute) are treated as corrupt.
MIN_QPM = 1.0
MAX_QPM = 2000.0
SUSTAIN_CC = 64


def _load_score(path: Path):
    """Scan the file strictly, then parse it with symusic: ``(score, SmfInfo)``."""
    from symusic import Score

    if not path.exists():
        raise MidiReadError(path, "file does not exist")
    if not path.is_file():
        raise MidiReadError(path, "not a regular file")
    data = path.read_bytes()
    if not data:
        raise MidiReadError(path, "file is empty (0 bytes)")
    info = scan_smf(data, path)
    if info.smpte_fps is not None:  # symusic reads ticks per quarter only: same ticks, a metrical header
        data = data[:12] + info.division.to_bytes(2, "big") + data[14:]
    try:
        return Score.from_midi(data, ttype="tick"), info
    except Exception as exc:  # symusic raises RuntimeError/ValueError with a message
        msg = str(exc).replace("MiniMidi: ", "").replace(": iostream error", "")
        raise MidiReadError(path, f"corrupt MIDI: {msg}") from None


def _tempo_map(score, info: SmfInfo, path: Path):
    """A vectorised ticks -> seconds function (float64) from the file's tempo map.

    SMPTE-timed files have no tempo map: a tick is a fixed fraction of a frame."""
    if info.smpte_fps is not None:
        sec_per_tick = 1.0 / (info.smpte_fps * info.ticks_per_frame)
        return lambda ticks: np.asarray(ticks, dtype=np.int64) * sec_per_tick
    tpq = int(score.ticks_per_quarter)
    tempos = score.tempos.numpy() if len(score.tempos) else None
    if tempos is None or tempos["time"].size == 0:
        t_tick, mspq = np.array([0], np.int64), np.array([500000.0])
    else:
        t_tick = tempos["time"].astype(np.int64)
        mspq = tempos["mspq"].astype(np.float64)
        qpm = 6e7 / np.maximum(mspq, 1e-9)
        bad = ~((qpm >= MIN_QPM) & (qpm <= MAX_QPM))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise MidiReadError(path, f"absurd tempo {qpm[i]:.6g} qpm at tick {t_tick[i]} "
                                      f"(allowed {MIN_QPM:g}..{MAX_QPM:g})")
        if t_tick[0] > 0:  # MIDI's default tempo holds until the first tempo event
            t_tick = np.concatenate(([0], t_tick))
            mspq = np.concatenate(([500000.0], mspq))
    sec_per_tick = mspq / 1e6 / tpq
    sec_at = np.concatenate(([0.0], np.cumsum(np.diff(t_tick) * sec_per_tick[:-1])))

    def to_seconds(ticks: np.ndarray) -> np.ndarray:
        ticks = np.asarray(ticks, dtype=np.int64)
        if len(t_tick) == 1:
            return ticks * sec_per_tick[0]
        k = np.searchsorted(t_tick, ticks, side="right") - 1
        return sec_at[k] + (ticks - t_tick[k]) * sec_per_tick[k]

    return to_seconds


def read_midi(path: PathLike, *, include_drums: bool = False) -> Performance:
    """Read a MIDI file (format 0 or 1) into a :class:`Performance`.

    All non-drum tracks are merged; times are seconds through the file's tempo
    map; sustain-pedal (CC64) events are kept. Raises :class:`MidiReadError`
    naming the file and the problem when the file cannot be used.
    """
    path = Path(path)
    score, info = _load_score(path)
    to_seconds = _tempo_map(score, info, path)
    span = float(to_seconds(np.array([info.last_tick], np.int64))[0])
    if span > MAX_SPAN_SECONDS:
        raise MidiReadError(path, f"absurd span: the last event is at {span:.4g} s (> 24 h, tick "
                                  f"{info.last_tick})")
    note_parts, pedal_parts, programs = [], [], []
    drum_tracks = 0
    for track in score.tracks:
        if track.is_drum and not include_drums:
            drum_tracks += 1
            continue
        arr = track.notes.numpy()
        if arr["time"].size:
            programs.append(int(track.program))
            note_parts.append(arr)
        if len(track.controls):
            cc = track.controls.numpy()
            sel = cc["number"] == SUSTAIN_CC
            if sel.any():
                pedal_parts.append(make_pedals(to_seconds(cc["time"][sel]), cc["value"][sel]))
    if note_parts:
        tick = np.concatenate([p["time"] for p in note_parts]).astype(np.int64)
        dur = np.concatenate([p["duration"] for p in note_parts]).astype(np.int64)
        notes = make_notes(
            to_seconds(tick),
            to_seconds(tick + dur),
            np.concatenate([p["pitch"] for p in note_parts]),
            np.concatenate([p["velocity"] for p in note_parts]),
        )
    else:
        notes = make_notes([], [], [], [])
    pedals = np.concatenate(pedal_parts) if pedal_parts else np.empty(0, PEDAL_DTYPE)
    meta = {
        "source": str(path),
        "ticks_per_quarter": int(score.ticks_per_quarter),
        "programs": sorted(set(programs)),
        "n_tracks": len(score.tracks),
        "drum_tracks": drum_tracks,
        "n_tempos": len(score.tempos),
        "qpm": float(60.0 / to_seconds(np.array([score.ticks_per_quarter], np.int64))[0]),  # the first beat's
        "smpte_fps": info.smpte_fps,
    }
    return Performance(notes, pedals, meta)


def performance_to_score(performance: Performance, *, tpq: int = 960, qpm: float = 120.0,
                         program: int = 0):
    """Build a tick-based symusic Score with one piano track from a Performance."""
    from symusic import ControlChange, Note, Score, Tempo, Track

    score = Score(tpq, ttype="second")
    score.tempos.append(Tempo(0.0, qpm=qpm, ttype="second"))
    track = Track(name="Piano", program=program, ttype="second")
    notes = performance.notes
    if len(notes):
        if notes["onset"].min() < 0:
            raise MidiWriteError("<performance>", "notes start before time 0")
        track.notes = Note.from_numpy(
            time=notes["onset"].astype(np.float32),
            duration=np.maximum(notes["offset"] - notes["onset"], 0).astype(np.float32),
            pitch=np.clip(notes["pitch"], 0, 127).astype(np.int8),
            velocity=np.clip(notes["velocity"], 1, 127).astype(np.int8),
            ttype="second",
        )
    ped = performance.pedals
    if ped.size:
        track.controls = ControlChange.from_numpy(
            time=np.maximum(ped["time"], 0).astype(np.float32),
            number=np.full(ped.size, SUSTAIN_CC, dtype=np.uint8),
            value=np.clip(ped["value"], 0, 127).astype(np.uint8),
            ttype="second",
        )
    score.tracks.append(track)
    return score.to("tick")


def write_midi(performance: Performance, path: PathLike, *, tpq: int = 960,
               qpm: float = 120.0) -> Path:
    """Write a Performance as a format-1 MIDI file with one piano track.

    Same-pitch notes that overlap are made disjoint first (see
    :func:`~tatumflow.midi.normalize.repair_overlaps`): MIDI pairs note-ons with
    note-offs per pitch, so overlaps would come back as different notes.
    The file is written to a temporary name and renamed, so a failure never
    leaves a half-written file. At the defaults (960 ticks per quarter, 120 qpm)
    one tick is 0.52 ms.
    """
    from .normalize import repair_overlaps

    path = Path(path)
    score = performance_to_score(repair_overlaps(performance), tpq=tpq, qpm=qpm)
    try:
        with atomic_path(path) as tmp:
            score.dump_midi(str(tmp))
    except OSError as exc:
        raise MidiWriteError(path, str(exc)) from None
    return path
