"""MIDI -> audio: a sampled piano through a SoundFont, or a built-in piano-like synth.

Two renderers, one contract (a :class:`~tatumflow.performance.Performance` in,
float32 stereo out, peak-normalised to -1 dBFS, deterministic):

- ``soundfont``: TinySoundFont (``tinysoundfont`` on PyPI; the wheel carries the
  synthesiser) playing the file's notes on General MIDI program 0 of a SoundFont
  (``--soundfont``, ``$TATUMFLOW_SOUNDFONT``, or a system one such as Debian's
  ``timgm6mb-soundfont`` / ``fluid-soundfont-gm``).
- ``builtin``: additive synthesis in numpy (inharmonic partials, brighter with
  velocity, pitch-dependent decay, a damper release), used when no SoundFont or
  synthesiser is installed, so rendering always works.

TinySoundFont ignores the sustain pedal (CC64), so both renderers apply it the
same way: a note released while the pedal is down sounds until the pedal lifts
(:func:`~tatumflow.midi.normalize.resolve_pedal`).

:func:`render_file` renders into a memory-mapped scratch file beside the output
and writes the normalised audio block by block, so memory stays bounded however
long the piece; :func:`render_audio` returns an array (for short pieces: the studio,
tests).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import TatumFlowError
from ..performance import Performance
from ..utils import atomic_path

#: Where SoundFonts are looked for when none is given (first found wins).
SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2", "/opt/homebrew/share/soundfonts/default.sf2",
)
RENDERERS = ("auto", "soundfont", "builtin")
PEAK = 10 ** (-1 / 20)          # -1 dBFS
TAIL_SECONDS = 1.5              # rendered after the last note ends (the release)
MAX_ARRAY_SECONDS = 3600.0      # render_audio's limit; render_file has none
BLOCK = 1 << 16                 # samples per block when normalising and writing


class RenderError(TatumFlowError):
    """Audio cannot be rendered as asked (no SoundFont, unknown format, ...)."""


@dataclass
class Audio:
    samples: np.ndarray          # (n, 2) float32 in [-1, 1]
    sample_rate: int
    renderer: str                # "soundfont" or "builtin"
    soundfont: Optional[str]

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    def describe(self) -> str:
        return (f"{self.renderer} renderer" + (f", SoundFont {self.soundfont}" if self.soundfont else "")
                + f", {self.sample_rate} Hz")


def find_soundfont(path: "str | os.PathLike | None" = None) -> Optional[Path]:
    """The SoundFont to use: ``path`` (must exist), ``$TATUMFLOW_SOUNDFONT``, or the first
    system one found; ``None`` when there is none."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise RenderError(f"{p}: no such SoundFont file")
        return p
    env = os.environ.get("TATUMFLOW_SOUNDFONT")
    for cand in ([env] if env else []) + list(SOUNDFONT_PATHS):
        if Path(cand).is_file():
            return Path(cand)
    return None


def _tinysoundfont():
    try:
        import tinysoundfont
    except ImportError:
        return None
    return tinysoundfont


def choose_renderer(renderer: str = "auto", soundfont: "str | os.PathLike | None" = None
                    ) -> tuple[str, Optional[Path]]:
    """``(renderer, soundfont path)`` for a request; ``auto`` prefers the SoundFont path."""
    if renderer not in RENDERERS:
        raise RenderError(f"renderer must be one of {', '.join(RENDERERS)}, got {renderer!r}")
    if renderer == "builtin":
        return "builtin", None
    sf = find_soundfont(soundfont)
    tsf = _tinysoundfont()
    if sf is not None and tsf is not None:
        return "soundfont", sf
    if renderer == "soundfont" or soundfont is not None:
        missing = "the tinysoundfont package (pip install --no-deps tinysoundfont)" if tsf is None else \
            "a SoundFont (--soundfont FILE.sf2, $TATUMFLOW_SOUNDFONT, or apt install timgm6mb-soundfont)"
        raise RenderError(f"the SoundFont renderer needs {missing}")
    return "builtin", None


def _events(perf: Performance, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Pedal-resolved notes as sample positions: (start, end, pitch, velocity, total length)."""
    from ..midi.normalize import resolve_pedal

    n = resolve_pedal(perf).notes
    start = np.rint(n["onset"] * sr).astype(np.int64)
    end = np.maximum(np.rint(n["offset"] * sr).astype(np.int64), start + 1)
    total = int(end.max() if len(end) else 0) + int(TAIL_SECONDS * sr)
    return start, end, n["pitch"].astype(np.int64), np.clip(n["velocity"], 1, 127).astype(np.int64), total


# ---------------------------------------------------------------- the SoundFont renderer
def _render_soundfont(buf: np.ndarray, perf: Performance, sr: int, sf: Path) -> None:
    tsf = _tinysoundfont()
    synth = tsf.Synth(samplerate=sr)
    try:
        sfid = synth.sfload(str(sf))
    except Exception as exc:  # the binding raises its own exception type
        raise RenderError(f"{sf}: not a usable SoundFont ({exc})") from None
    synth.program_select(0, sfid, 0, 0)  # bank 0, program 0: Acoustic Grand Piano
    start, end, pitch, vel, total = _events(perf, sr)
    # One timeline of note-offs then note-ons (at one instant, release before striking again).
    t = np.concatenate([end, start])
    kind = np.concatenate([np.zeros(len(end), np.int64), np.ones(len(start), np.int64)])
    p = np.concatenate([pitch, pitch])
    v = np.concatenate([np.zeros(len(end), np.int64), vel])
    order = np.lexsort((kind, t))
    pos = 0
    for i in order:
        at = min(int(t[i]), total)
        if at > pos:
            buf[pos:at] = np.frombuffer(synth.generate(at - pos), np.float32).reshape(-1, 2)
            pos = at
        if kind[i]:
            synth.noteon(0, int(p[i]), int(v[i]))
        else:
            synth.noteoff(0, int(p[i]))
    while pos < total:
        n = min(BLOCK, total - pos)
        buf[pos:pos + n] = np.frombuffer(synth.generate(n), np.float32).reshape(-1, 2)
        pos += n


# ---------------------------------------------------------------- the built-in renderer
def _piano_note(pitch: int, velocity: int, n_hold: int, sr: int) -> np.ndarray:
    """One note's mono samples: ``n_hold`` samples held, then the damper's release.

    Partial k of a stiff string sounds at k f0 sqrt(1 + B k^2) (B: inharmonicity,
    growing up the keyboard); louder notes have stronger upper partials; each
    partial decays exponentially, upper ones faster, low notes slower; the first
    2 ms ramp in (no click) and a released note dies within ~0.3 s."""
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    b = 4e-4 * 2.0 ** ((pitch - 60) / 24.0)
    loud = velocity / 127.0
    tau0 = float(np.clip(4.0 * 2.0 ** (-(pitch - 33) / 18.0), 0.25, 8.0))
    release = int(0.3 * sr)
    n = min(n_hold, int(6 * tau0 * sr)) + release
    idx = np.arange(n, dtype=np.uint32)
    t32 = idx.astype(np.float32) / np.float32(sr)
    y = np.zeros(n, np.float32)
    slope = 2.6 - 1.6 * loud  # spectral tilt: a soft note is darker
    for k in range(1, 17):
        fk = k * f0 * np.sqrt(1.0 + b * k * k)
        ak = k ** -slope
        if fk > min(0.45 * sr, 12000.0) or ak < 2e-3:
            break
        # a 32-bit phase accumulator (exact, wraps by itself), then sine and decay in fast float32
        phase = (idx * np.uint32(round(fk / sr * 2.0**32))).astype(np.float32)
        y += np.float32(ak) * np.exp(t32 * np.float32(-(1.0 + 0.35 * (k - 1)) / tau0)) \
            * np.sin(phase * np.float32(2 * np.pi / 2.0**32))
    env = np.minimum(t32 / np.float32(0.002), np.float32(1.0))
    hold = min(n_hold, n)
    if hold < n:
        env[hold:] *= np.exp((t32[hold] - t32[hold:]) / np.float32(0.06))
    return y * env * np.float32(0.15 * loud ** 1.6)


def _render_builtin(buf: np.ndarray, perf: Performance, sr: int) -> None:
    start, end, pitch, vel, total = _events(perf, sr)
    for s, e, p, v in zip(start, end, pitch, vel):
        y = _piano_note(int(p), int(v), int(e - s), sr)
        stop = min(total, int(s) + len(y))
        seg = y[: stop - int(s)]
        # a little stereo: low notes to the left, high to the right, as seen from the bench
        pan = float(np.clip((p - 21) / 87.0, 0.0, 1.0))
        buf[int(s):stop, 0] += seg * np.float32(np.cos(pan * np.pi / 2) * 1.2)
        buf[int(s):stop, 1] += seg * np.float32(np.sin(pan * np.pi / 2) * 1.2)


def _render_into(buf: np.ndarray, perf: Performance, sr: int, renderer: str, sf: Optional[Path]) -> None:
    if renderer == "soundfont":
        _render_soundfont(buf, perf, sr, sf)
    else:
        _render_builtin(buf, perf, sr)


def _peak(buf: np.ndarray) -> float:
    return max((float(np.abs(buf[i:i + BLOCK]).max()) for i in range(0, len(buf), BLOCK)), default=0.0)


def _check(perf: Performance, sample_rate: int) -> None:
    if not 8000 <= sample_rate <= 192000:
        raise RenderError(f"sample rate must be in 8000..192000 Hz, got {sample_rate}")
    if not len(perf):
        raise RenderError("nothing to render: the performance has no notes")


def render_audio(perf: Performance, *, sample_rate: int = 44100, soundfont: "str | os.PathLike | None" = None,
                 renderer: str = "auto") -> Audio:
    """Render a performance to an in-memory :class:`Audio` (at most an hour)."""
    _check(perf, sample_rate)
    name, sf = choose_renderer(renderer, soundfont)
    if perf.end > MAX_ARRAY_SECONDS:
        raise RenderError(f"{perf.end:.0f} s is too long to render into memory; use render_file")
    _, _, _, _, total = _events(perf, sample_rate)
    buf = np.zeros((total, 2), np.float32)
    _render_into(buf, perf, sample_rate, name, sf)
    peak = _peak(buf)
    if peak > 0:
        buf *= np.float32(PEAK / peak)
    return Audio(buf, sample_rate, name, str(sf) if sf else None)


def _audio_format(path: Path) -> str:
    formats = {".wav": "WAV", ".flac": "FLAC"}
    if path.suffix.lower() not in formats:
        raise RenderError(f"{path}: unknown audio format {path.suffix!r} (use .wav or .flac)")
    return formats[path.suffix.lower()]


def _writer(path: Path, tmp: Path, sample_rate: int):
    """A (write(block), close()) pair writing 16-bit PCM as WAV or FLAC (libsndfile)."""
    import soundfile

    f = soundfile.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=2, subtype="PCM_16",
                            format=_audio_format(path))
    return (lambda block: f.write(_pcm16(block))), f.close


def _pcm16(block: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(block * 32767.0), -32768, 32767).astype("<i2")


def write_audio(audio: Audio, path: "str | os.PathLike") -> Path:
    """Write :class:`Audio` as ``.wav`` or ``.flac`` (16-bit), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        write, close = _writer(path, tmp, audio.sample_rate)
        try:
            for i in range(0, len(audio.samples), BLOCK):
                write(audio.samples[i:i + BLOCK])
        finally:
            close()
    return path


def render_file(perf: Performance, path: "str | os.PathLike", *, sample_rate: int = 44100,
                soundfont: "str | os.PathLike | None" = None, renderer: str = "auto") -> Audio:
    """Render straight to ``path`` (``.wav`` or ``.flac``) with memory bounded by a block,
    whatever the length: the raw mix goes to a scratch file beside ``path``, then is
    normalised and encoded block by block. Returns an :class:`Audio` whose ``samples``
    is empty (the music is in the file)."""
    _check(perf, sample_rate)
    path = Path(path)
    name, sf = choose_renderer(renderer, soundfont)
    _audio_format(path)  # before the long part
    _, _, _, _, total = _events(perf, sample_rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".render-", dir=path.parent) as scratch:
        buf = np.memmap(Path(scratch) / "mix.f32", np.float32, "w+", shape=(total, 2))
        _render_into(buf, perf, sample_rate, name, sf)
        peak = _peak(buf)
        gain = np.float32(PEAK / peak) if peak > 0 else np.float32(1.0)
        with atomic_path(path) as tmp:
            write, close = _writer(path, tmp, sample_rate)
            try:
                for i in range(0, total, BLOCK):
                    write(buf[i:i + BLOCK] * gain)
            finally:
                close()
        del buf
    return Audio(np.zeros((0, 2), np.float32), sample_rate, name, str(sf) if sf else None)
