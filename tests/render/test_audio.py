"""Audio rendering: the tests listen to the audio (pitch, onset, loudness, pedal), not to file names."""

import numpy as np
import pytest

from tatumflow import Performance, write_midi
from tatumflow.cli.main import main
from tatumflow.render.audio import (PEAK, RenderError, _tinysoundfont, choose_renderer, find_soundfont,
                                    render_audio, render_file, write_audio)

SR = 44100
HAS_SF = find_soundfont() is not None and _tinysoundfont() is not None
RENDERERS = ["builtin", pytest.param("soundfont", marks=pytest.mark.skipif(
    not HAS_SF, reason="no SoundFont renderer here (pip install --no-deps tinysoundfont; apt install "
                       "timgm6mb-soundfont): make setup installs both where it can"))]


def perf(notes, pedals=()):
    on, off, pitch, vel = zip(*notes)
    t, v = (zip(*pedals) if pedals else ((), ()))
    return Performance.from_arrays(on, off, pitch, vel, pedal_time=list(t), pedal_value=list(v))


def mono(audio):
    return audio.samples.mean(axis=1).astype(np.float64)


def fundamental(x: np.ndarray, sr: int = SR) -> float:
    """Harmonic-product-spectrum estimate (3 harmonics) with parabolic peak interpolation."""
    n = len(x)
    spec = np.abs(np.fft.rfft(x * np.hanning(n), 8 * n))
    hps = spec.copy()
    for h in (2, 3):
        hps[: len(spec) // h] *= spec[::h][: len(spec) // h]
    freqs = np.fft.rfftfreq(8 * n, 1 / sr)
    band = (freqs > 50) & (freqs < 2000)
    i = int(np.flatnonzero(band)[np.argmax(hps[band])])
    a, b, c = np.log(spec[i - 1: i + 2] + 1e-12)
    return float(freqs[i] + 0.5 * (a - c) / (a - 2 * b + c) * (freqs[1] - freqs[0]))


def read_wav(path):
    import soundfile

    return soundfile.read(str(path), dtype="float32")


def rms(x, start, end, sr=SR):
    return float(np.sqrt(np.mean(x[int(start * sr): int(end * sr)] ** 2)))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a4_sounds_at_440_hz(renderer):
    a = render_audio(perf([(0.2, 1.7, 69, 90)]), renderer=renderer)
    assert fundamental(mono(a)[int(0.3 * SR): int(1.3 * SR)]) == pytest.approx(440.0, rel=0.01)
    c = render_audio(perf([(0.2, 1.7, 48, 90)]), renderer=renderer)  # C3, 130.8 Hz: not a fixed tone
    assert fundamental(mono(c)[int(0.3 * SR): int(1.3 * SR)]) == pytest.approx(130.81, rel=0.01)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_energy_starts_at_the_onset(renderer):
    x = mono(render_audio(perf([(0.5, 1.5, 60, 100)]), renderer=renderer))
    frame = int(0.001 * SR)
    env = np.sqrt(np.convolve(x ** 2, np.ones(frame) / frame, mode="same"))
    first = np.flatnonzero(env > 0.01 * env.max())[0] / SR  # -40 dB below the peak
    assert first == pytest.approx(0.5, abs=0.010)
    assert rms(x, 0.0, 0.49) < 1e-4


@pytest.mark.parametrize("renderer", RENDERERS)
def test_louder_velocity_gives_more_energy(renderer):
    x = mono(render_audio(perf([(0.5, 1.5, 64, 40), (2.5, 3.5, 64, 110)]), renderer=renderer))
    soft, loud = rms(x, 0.5, 1.0), rms(x, 2.5, 3.0)
    assert loud > 2.0 * soft > 0


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_held_pedal_keeps_a_released_note_sounding(renderer):
    note = [(0.3, 0.8, 60, 90)]
    dry = mono(render_audio(perf(note), renderer=renderer))
    wet = mono(render_audio(perf(note, pedals=[(0.1, 127), (2.5, 0)]), renderer=renderer))
    assert rms(dry, 0.3, 0.8) == pytest.approx(rms(wet, 0.3, 0.8), rel=0.05)  # the same note until release
    assert rms(wet, 1.2, 1.8) > 10 * rms(dry, 1.2, 1.8)  # then the pedal holds it
    assert rms(wet, 3.2, 3.6) < 0.1 * rms(wet, 1.2, 1.8)  # and lifting the pedal ends it


@pytest.mark.parametrize("renderer", RENDERERS)
def test_normalised_deterministic_and_the_file_path_matches(renderer, tmp_path):
    rng = np.random.default_rng(0)
    on = np.sort(rng.uniform(0, 6, 60))
    p = Performance.from_arrays(on, on + rng.uniform(0.1, 1.0, 60), rng.integers(30, 100, 60),
                                rng.integers(20, 127, 60))
    a, b = render_audio(p, renderer=renderer), render_audio(p, renderer=renderer)
    assert np.array_equal(a.samples, b.samples)
    assert np.abs(a.samples).max() == pytest.approx(PEAK, abs=1e-6) and a.samples.dtype == np.float32
    render_file(p, tmp_path / "x.wav", renderer=renderer)
    x, sr = read_wav(tmp_path / "x.wav")
    assert sr == SR and x.shape == a.samples.shape
    assert np.abs(x - a.samples).max() < 2 / 32767  # the same numbers, quantised to 16 bits
    write_audio(a, tmp_path / "y.wav")
    assert (tmp_path / "y.wav").read_bytes() == (tmp_path / "x.wav").read_bytes()


def test_flac_and_bad_requests(tmp_path):
    import soundfile

    p = perf([(0.1, 0.6, 60, 80), (0.6, 1.2, 67, 80)])
    render_file(p, tmp_path / "x.flac", renderer="builtin", sample_rate=22050)
    data, sr = soundfile.read(tmp_path / "x.flac")
    assert sr == 22050 and data.shape[1] == 2 and np.abs(data).max() == pytest.approx(PEAK, abs=1e-3)
    with pytest.raises(RenderError, match="unknown audio format '.mp3'"):
        render_file(p, tmp_path / "x.mp3")
    with pytest.raises(RenderError, match="no notes"):
        render_audio(Performance.from_arrays([], [], [], []))
    with pytest.raises(RenderError, match="no such SoundFont"):
        choose_renderer("auto", tmp_path / "missing.sf2")
    with pytest.raises(RenderError, match="renderer must be one of"):
        choose_renderer("fm")


def test_cli_render_says_which_renderer(tmp_path, capsys):
    write_midi(perf([(0.1, 0.6, 60, 80), (0.6, 1.2, 64, 90)]), tmp_path / "in.mid")
    assert main(["render", str(tmp_path / "in.mid"), "--out", str(tmp_path / "o.wav"), "--renderer", "builtin"]) == 0
    out = capsys.readouterr().out
    assert "builtin renderer" in out and "x real time" in out
    x, sr = read_wav(tmp_path / "o.wav")
    assert len(x) / sr == pytest.approx(1.2 + 1.5, abs=0.01)  # the music and its release tail
