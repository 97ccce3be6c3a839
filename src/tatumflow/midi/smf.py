"""A strict Standard MIDI File scanner: every byte accounted for, or a reason.

symusic (the fast reader) is lenient: a corrupt data byte ends a track early
and the rest of the notes silently vanish, and tick positions are 32-bit, so
huge delta times wrap around into negative onsets. This scanner walks the
file's structure once (chunks, delta times, running status, meta and sysex
lengths) with Python integers, and raises :class:`MidiReadError` naming the
byte offset and track of the first thing that is not a well-formed SMF. It
does not build notes; ``read_midi`` still does that with symusic, after the
scan has said the file is complete and its positions fit.

What it returns is what the reader needs and symusic cannot give for every
file: the time division (ticks per quarter, or SMPTE frames) and the last tick
of any track, counted without wrapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import MidiReadError

#: Largest tick position symusic's 32-bit ticks hold without wrapping.
MAX_TICK = 2**31 - 1
#: Frames per second of the SMPTE formats (the byte is stored negated); 29 is 29.97 drop-frame.
SMPTE_FPS = {24: 24.0, 25: 25.0, 29: 30000 / 1001, 30: 30.0}


@dataclass
class SmfInfo:
    """What a strict scan learned about a file."""

    format: int
    n_tracks: int
    #: Ticks per quarter note; for SMPTE files, ticks per second (rounded).
    division: int
    #: Frames per second for SMPTE timing, ``None`` for metrical (ticks per quarter) timing.
    smpte_fps: "float | None"
    last_tick: int
    #: SMPTE ticks per frame (0 for metrical timing).
    ticks_per_frame: int = 0


def _vlq(data: bytes, i: int, end: int, where) -> tuple[int, int]:
    """A variable-length quantity at ``i``: (value, next index). At most 4 bytes (28 bits)."""
    value = 0
    for k in range(4):
        if i >= end:
            raise where(i, "variable-length number runs past the end of the track")
        b = data[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, i
    raise where(i - 4, "variable-length number longer than 4 bytes")


def scan_smf(data: bytes, path: "str | Path" = "<bytes>") -> SmfInfo:
    """Check that ``data`` is a complete, well-formed Standard MIDI File.

    Raises :class:`MidiReadError` with the byte offset (and track) of the first
    problem: a bad header, a chunk longer than the file, fewer tracks than the
    header announces, an event running past its track's end, a data byte
    >= 0x80, a status byte a file may not hold, bytes after End of Track, a
    chunk that is not a track where a track should be, or a tick position
    beyond 2^31 - 1. Bytes after the announced tracks are ignored.
    """
    n = len(data)
    if n < 14 or data[:4] != b"MThd":
        head = bytes(data[:4])
        raise MidiReadError(path, f"not a MIDI file (header {head!r}, expected b'MThd')" if head != b"MThd"
                            else f"truncated header ({n} bytes)")
    hlen = int.from_bytes(data[4:8], "big")
    if hlen < 6 or 8 + hlen > n:
        raise MidiReadError(path, f"corrupt MIDI: header length {hlen} (expected 6)")
    fmt, ntrk, div = (int.from_bytes(data[8 + 2 * k:10 + 2 * k], "big") for k in range(3))
    if fmt > 2:
        raise MidiReadError(path, f"corrupt MIDI: unknown format {fmt} at byte 8")
    if ntrk == 0:
        raise MidiReadError(path, "corrupt MIDI: the header announces 0 tracks")
    if div & 0x8000:
        fps_code, per_frame = 256 - (div >> 8), div & 0xFF
        if fps_code not in SMPTE_FPS or per_frame == 0:
            raise MidiReadError(path, f"corrupt MIDI: SMPTE division {fps_code} fps x {per_frame} at byte 12")
        fps, division = SMPTE_FPS[fps_code], round(SMPTE_FPS[fps_code] * per_frame)
    elif div == 0:
        raise MidiReadError(path, "corrupt MIDI: 0 ticks per quarter note at byte 12")
    else:
        fps, division, per_frame = None, div, 0
    info = SmfInfo(fmt, ntrk, division, fps, 0, ticks_per_frame=per_frame)
    pos, track = 8 + hlen, 0
    while track < ntrk:
        if pos + 8 > n:
            raise MidiReadError(path, f"corrupt MIDI: file ends after {track} of {ntrk} tracks (byte {pos})")
        kind, length = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
        start, end = pos + 8, pos + 8 + length
        if end > n:
            raise MidiReadError(path, f"corrupt MIDI: track {track} at byte {pos} says {length} bytes, "
                                      f"only {n - start} remain")
        if kind != b"MTrk":  # the standard lets readers skip alien chunks; in practice one is a damaged track
            raise MidiReadError(path, f"corrupt MIDI: expected a track chunk (b'MTrk') at byte {pos}, "
                                      f"found {bytes(kind)!r}")
        _scan_track(data, start, end, track, info, path)
        track += 1
        pos = end
    return info


def _scan_track(data: bytes, i: int, end: int, track: int, info: SmfInfo, path) -> None:
    def where(at: int, what: str) -> MidiReadError:
        return MidiReadError(path, f"corrupt MIDI: {what} (track {track}, byte {at})")

    tick, running = 0, 0
    while i < end:
        b = data[i]
        if b < 0x80:  # the common one-byte delta, inline
            i += 1
            tick += b
        else:
            delta, i = _vlq(data, i, end, where)
            tick += delta
            if tick > MAX_TICK:
                raise where(i, f"tick position {tick} overflows 32 bits (huge delta times)")
        if i >= end:
            raise where(i, "delta time without an event at the end of the track")
        status = data[i]
        if status >= 0x80:
            i += 1
        elif running:
            status = running
        else:
            raise where(i, f"data byte 0x{status:02X} without a status byte")
        if status < 0xF0:
            need = 1 if 0xC0 <= status < 0xE0 else 2
            if i + need > end:
                raise where(i, "channel message runs past the end of the track")
            if (data[i] | data[i + need - 1]) & 0x80:
                k = i if data[i] & 0x80 else i + 1
                raise where(k, f"invalid data byte 0x{data[k]:02X} in a 0x{status:02X} message")
            i += need
            running = status
        elif status == 0xFF:
            if i >= end:
                raise where(i, "meta event runs past the end of the track")
            mtype = data[i]
            length, j = _vlq(data, i + 1, end, where)
            if j + length > end:
                raise where(i, f"meta event 0x{mtype:02X} of {length} bytes runs past the end of the track")
            i = j + length
            running = 0
            if mtype == 0x2F:
                if i != end:
                    raise where(i, f"{end - i} bytes after End of Track")
                break
        elif status in (0xF0, 0xF7):
            length, j = _vlq(data, i, end, where)
            if j + length > end:
                raise where(i, f"sysex of {length} bytes runs past the end of the track")
            body = data[j:j + length]
            if status == 0xF0 and body and max(body[:-1] if body[-1] == 0xF7 else body) >= 0x80:
                raise where(j, "invalid data byte in a sysex message")
            i = j + length
            running = 0
        else:
            raise where(i - 1, f"status byte 0x{status:02X} is not allowed in a MIDI file")
    if tick > MAX_TICK:  # one-byte deltas are summed unchecked in the loop
        raise where(end, f"tick position {tick} overflows 32 bits")
    info.last_tick = max(info.last_tick, tick)
