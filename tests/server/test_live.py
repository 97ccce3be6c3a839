"""Live call-and-response on stand-in ports: phrases end on a pause or after N bars, the
answer continues what was just played, in time, and the next phrase replaces it."""

import time

import numpy as np
import pytest

from conftest import REPO
from tatumflow.cli.main import main
from tatumflow.pretrained import load_model
from tatumflow.server.live import LiveSession, Message, StandInPort

FIX = REPO / "tests" / "fixtures"


def play(session, notes, start):
    """Play (onset, offset, pitch) notes in real time from ``start`` into the session."""
    events = sorted([(start + on, Message("note_on", p, 90)) for on, off, p in notes]
                    + [(start + off, Message("note_off", p, 0)) for on, off, p in notes], key=lambda e: e[0])
    for t, msg in events:
        while time.perf_counter() < t:
            time.sleep(0.001)
        session.on_message(msg)


def run_until(session, t_end):
    answers = []
    while time.perf_counter() < t_end:
        a = session.tick()
        if a is not None:
            answers.append(a)
        time.sleep(0.002)
    return answers


@pytest.fixture(scope="module")
def rnn():
    return load_model(FIX / "music_rnn_v1")[0].eval()


def test_a_pause_ends_the_phrase_and_the_answer_follows_in_time(rnn):
    out = StandInPort()
    s = LiveSession(rnn, out, silence=0.3, answer_seconds=1.5)
    phrase = [(0.1 * i, 0.1 * i + 0.08, 60 + (i % 5)) for i in range(8)]
    t0 = time.perf_counter()
    play(s, phrase, t0)
    end_of_playing = time.perf_counter()
    answers = run_until(s, end_of_playing + 2.5)
    s.close()
    assert len(answers) == 1 and len(answers[0].phrase) == 8  # the phrase as played
    a = answers[0]
    assert a.detected - end_of_playing == pytest.approx(0.3, abs=0.05)  # the pause ended it
    ons = [(t, m) for t, m in out.got if m.type == "note_on"]
    assert ons and ons[0][0] - a.detected < 0.5  # the answer starts promptly (the benchmark measures it tightly)
    assert ons[0][0] >= a.detected and ons[-1][0] - ons[0][0] <= 1.5 + 0.05  # after the phrase, as long as asked
    sounding = {}
    for _, m in out.got:
        sounding[m.note] = sounding.get(m.note, 0) + (1 if m.type == "note_on" else -1)
    assert all(v == 0 for v in sounding.values())  # every note released
    st = s.stats()
    assert st["answers"] == 1 and st["messages"] == len(out.got) and st["jitter_ms"]["p50"] < 5


def test_bars_end_a_phrase_and_a_new_phrase_replaces_the_answer(rnn):
    out = StandInPort()
    s = LiveSession(rnn, out, silence=5.0, bars=1, qpm=240.0, answer_seconds=5.0)  # one bar = 1 s
    t0 = time.perf_counter()
    play(s, [(0.05 * i, 0.05 * i + 0.2, 48 + i) for i in range(6)], t0)
    first = run_until(s, t0 + 1.3)
    assert len(first) == 1 and first[0].detected - t0 == pytest.approx(1.0, abs=0.05)
    t1 = time.perf_counter()
    play(s, [(0.05 * i, 0.05 * i + 0.1, 72 + i) for i in range(4)], t1)  # played over the answer
    second = run_until(s, t1 + 1.3)
    assert first[0].cancel.is_set() and not second[0].cancel.is_set()
    s.close()
    assert len(second) == 1 and sorted(second[0].phrase.notes["pitch"].tolist()) == [72, 73, 74, 75]
    # nothing of the first answer is sent after the second phrase ended, apart from its releases
    late = [m for t, m in out.got if t > second[0].detected + 0.01 and m.type == "note_on"
            and any(abs(t - n[0]) < 1e-3 for n in first[0].notes)]
    assert not late
    assert np.isfinite(s.stats()["jitter_ms"]["p99"])


def test_live_without_a_midi_system_is_one_line(capsys):
    from tatumflow.server.live import LiveError, open_ports

    try:
        ports = open_ports(None, None)
    except LiveError:
        pass
    else:  # never start a session that would wait for a keyboard
        for p in ports:
            p.close()
        pytest.skip("a MIDI system is present here")
    rc = main(["live", "--model", str(FIX / "music_rnn_v1")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "python-rtmidi" in err


def test_tatumflow_answers_too():
    tf = load_model(FIX / "tatumflow_v1")[0].eval()
    out = StandInPort()
    s = LiveSession(tf, out, silence=0.2, answer_seconds=2.0, seed=3)
    play(s, [(0.12 * i, 0.12 * i + 0.1, 60 + 2 * (i % 4)) for i in range(10)], time.perf_counter())
    answers = run_until(s, time.perf_counter() + 3.0)
    s.close()
    assert len(answers) == 1
    ons = [t for t, m in out.got if m.type == "note_on"]
    assert ons and min(ons) >= answers[0].detected and max(ons) - min(ons) <= 2.0 + 0.05
