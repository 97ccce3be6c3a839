import os
import signal
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tatumflow import Performance

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TATUMFLOW_DATA", REPO.parent / "shared" / "data"))
PIJAMA = DATA / "pijama"
PERCEPIANO = DATA / "percepiano"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available at {path}")
    return path


@pytest.fixture
def pijama_index() -> Path:
    return need(PIJAMA / "index.csv")


@pytest.fixture
def percepiano_midi() -> Path:
    return need(PERCEPIANO / "midi")


def run_python(args: list[str], *, timeout: float, env: dict | None = None,
               tries: int = 1) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` (text output captured) in a process group of its own. A child
    still running after ``timeout`` seconds is stopped with the Python stack of each of
    its threads (faulthandler, dumped on SIGABRT), and then its whole group; it runs
    again, with a warning carrying the stacks, while ``tries`` last, and after the last
    the test fails with them, so one hang never holds up the whole suite."""
    cmd = f"python {' '.join(map(str, args))}"
    for attempt in range(1, tries + 1):
        proc = subprocess.Popen([sys.executable, "-X", "faulthandler", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:  # stuck where no signal reaches it, or its children hold the pipes
                os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # what it started and left behind
            except ProcessLookupError:
                pass
        msg = f"{cmd} still ran after {timeout:.0f} s (try {attempt} of {tries}); its threads then:\n{err[-6000:]}"
        if attempt == tries:
            pytest.fail(msg)
        warnings.warn(msg, stacklevel=2)


def write_subset_index(index: Path, rows: list[dict], out: Path) -> Path:
    """A CSV index of some rows of ``index``, with absolute paths."""
    import csv

    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({**r, "path": str(index.parent / r["path"])})
    return out


def random_performance(rng: np.random.Generator, n: int = 200, *, pedal: bool = True,
                       span: float = 30.0) -> Performance:
    """A messy but valid performance: chords, long gaps, overlaps, pedal."""
    onset = np.sort(rng.uniform(0, span, n))
    onset[rng.random(n) < 0.2] += 7.3  # some gaps longer than the 5 s max shift
    onset = np.sort(onset)
    dur = rng.exponential(0.4, n) + 0.02
    pitch = rng.integers(21, 109, n)
    vel = rng.integers(1, 128, n)
    ped_t, ped_v = [], []
    if pedal:
        t = 0.3
        while t < span:
            ped_t += [t, t + rng.uniform(0.2, 2.0)]
            ped_v += [int(rng.integers(64, 128)), int(rng.integers(0, 64))]
            t = ped_t[-1] + rng.uniform(0.1, 3.0)
    return Performance.from_arrays(onset, onset + dur, pitch, vel, pedal_time=ped_t, pedal_value=ped_v)


def tune(seed: int, bars: int = 8) -> Performance:
    """A monophonic melody on the 16th grid at 120 qpm: steps of 1-4 cells, a scale-wise walk."""
    rng = np.random.default_rng(seed)
    on, t, p, pitches = [], 0, 60 + int(rng.integers(-5, 6)), []
    while t < bars * 16:
        on.append(t)
        pitches.append(p)
        t += int(rng.choice([1, 2, 2, 4]))
        p = int(np.clip(p + rng.choice([-2, -1, 1, 2, 0]), 48, 84))
    on = np.array(on) * 0.125
    off = np.append(on[1:], bars * 16 * 0.125)
    return Performance.from_arrays(on, off, pitches, rng.integers(60, 110, len(on)), metadata={"qpm": 120.0})


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """A token store of 24 random piano pieces (train 18, val 4, test 2), every third
    by "Art Tatum" (the pianist control's presets), the rest by "Someone"."""
    from tatumflow import write_midi
    from tatumflow.data import prepare_store

    d = tmp_path_factory.mktemp("store")
    rows = ["path,pianist,split"]
    for i in range(24):
        write_midi(random_performance(np.random.default_rng(i), 200, pedal=False), d / "midi" / f"{i}.mid")
        who = "Art Tatum" if i % 3 == 0 else "Someone"
        rows.append(f"midi/{i}.mid,{who},{'train' if i < 18 else 'val' if i < 22 else 'test'}")
    (d / "index.csv").write_text("\n".join(rows) + "\n")
    prepare_store(d / "index.csv", d / "store", workers=1, progress=False)
    return d / "store"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---- hand-made MIDI bytes, to test the reader on files we control exactly ------------
def vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def track(events: list[tuple[int, bytes]]) -> bytes:
    """events: (delta ticks, raw event bytes); end-of-track is appended."""
    body = b"".join(vlq(d) + e for d, e in events) + b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + body


def midi_file(fmt: int, tpq: int, tracks: list[bytes]) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks), tpq) + b"".join(tracks)


def tempo(us_per_quarter: int) -> bytes:
    return b"\xff\x51\x03" + us_per_quarter.to_bytes(3, "big")
