"""Live call-and-response: listen to a MIDI keyboard, answer each phrase in time.

The player plays; when they pause (``silence`` seconds with no key down) or after
``bars`` bars, the phrase just played becomes the prompt of a continuation, which
is played back through the output port while the player may play over it. The
next phrase replaces the answer (its sounding notes are released) and the next
answer follows the new material.

Timing: an answer is generated *ahead of the clock* by its own thread (at most
``lookahead`` seconds ahead), and a scheduler thread sends each message at its
due time (sleep, then a short spin), so compute never delays a note and the
notes of a chord leave together. The Music RNN answers note by note (first note
within milliseconds); TatumFlow writes its continuation first, then plays it.
``benchmarks/live_latency.py`` measures latency and jitter on stand-in ports.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import numpy as np

from ..errors import TatumFlowError
from ..midi.playback import Message, Scheduler, StandInPort
from ..performance import Performance

INSTALL_HINT = ("live MIDI needs python-rtmidi (pip install python-rtmidi) and a MIDI system: ALSA's sequencer "
                "on Linux (/dev/snd/seq, module snd-seq), CoreMIDI on macOS, WinMM on Windows")


class LiveError(TatumFlowError):
    """No MIDI system, an unknown port, or a model that cannot answer."""


# ---------------------------------------------------------------- ports
def open_ports(in_name: Optional[str], out_name: Optional[str]):
    """``(input, output)`` mido ports (a virtual port ``TatumFlow`` where a name is not
    given), or a one-line :class:`LiveError` saying what is missing."""
    import importlib.util

    if importlib.util.find_spec("mido") is None or importlib.util.find_spec("rtmidi") is None:
        raise LiveError(INSTALL_HINT)  # rtmidi: the backend mido uses
    import mido

    # The MIDI libraries print their own complaints to the C stderr: keep the error one line.
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        names_in, names_out = mido.get_input_names(), mido.get_output_names()
        inp = mido.open_input(in_name) if in_name else mido.open_input("TatumFlow in", virtual=True)
        out = mido.open_output(out_name) if out_name else mido.open_output("TatumFlow out", virtual=True)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "ALSA" in msg or "MIDI" in msg or isinstance(exc, SystemError):
            raise LiveError(f"no MIDI system ({msg}); {INSTALL_HINT}") from None
        raise LiveError(f"cannot open MIDI port: {msg} (inputs: {', '.join(names_in) or 'none'}; outputs: "
                        f"{', '.join(names_out) or 'none'})") from None
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return inp, out


# ---------------------------------------------------------------- answer generators
def answer_notes(model, phrase: Performance, seconds: float, *, seed: int = 0, temperature: float = 1.0
                 ) -> Iterator[tuple[float, float, int, int]]:
    """The answer to ``phrase``: ``(onset, offset, pitch, velocity)`` in seconds from the
    answer's start (its first note at 0), ``seconds`` long, produced lazily."""
    family = getattr(model, "family", "")
    if family == "music_rnn":
        from ..models.music_rnn import NoteStreamer
        from ..models.music_rnn.data import performance_to_notes

        st = NoteStreamer(model, temperature=temperature, seed=seed,  # velocity: for a model without the head
                          velocity=int(np.clip(np.median(phrase.notes["velocity"]), 1, 127)))
        st.prime(performance_to_notes(phrase), start=float(phrase.notes["onset"].min()))
        t0 = None
        for on, off, pitch, velocity in st.stream(seconds):
            t0 = on if t0 is None else t0
            yield on - t0, off - t0, int(pitch), int(velocity)
        return
    if family == "tatumflow":
        from ..models.tatumflow.generate import GenerationPipeline, Sampling

        res = GenerationPipeline(model).continuation(phrase, seconds, seed=seed,
                                                     sampling=Sampling(temperature=temperature, steps=20))
        n = res.performance.notes
        new = n[n["onset"] > phrase.end - 1e-3]
        if len(new):
            t0 = float(new["onset"].min())
            for x in np.sort(new, order="onset"):
                yield float(x["onset"]) - t0, float(x["offset"]) - t0, int(x["pitch"]), int(x["velocity"])
        return
    raise LiveError(f"a {family or type(model).__name__} model cannot answer phrases (use a music_rnn or "
                    f"tatumflow model)")


# ---------------------------------------------------------------- the session
@dataclass
class Answer:
    tag: int
    phrase: Performance
    detected: float
    notes: list = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)


class LiveSession:
    """Phrase detection on the player's messages and an answer per phrase.

    ``on_message(msg)`` is fed every incoming message; ``tick()`` is called often
    (``run`` does both for a mido input port)."""

    def __init__(self, model, out_port, *, silence: float = 0.5, bars: Optional[int] = None, qpm: float = 120.0,
                 answer_seconds: float = 8.0, seed: int = 0, temperature: float = 1.0, lookahead: float = 0.25,
                 clock: Callable[[], float] = time.perf_counter, log: Callable[[str], None] = lambda s: None):
        if silence <= 0 or (bars is not None and bars < 1) or answer_seconds <= 0 or qpm <= 0:
            raise LiveError("silence, answer_seconds and qpm must be > 0 and bars >= 1")
        self.model, self.clock, self.log = model, clock, log
        self.silence, self.bars, self.qpm = silence, bars, qpm
        self.answer_seconds, self.seed, self.temperature, self.lookahead = answer_seconds, seed, temperature, lookahead
        self.scheduler = Scheduler(out_port, clock)
        self.scheduler.start()
        self.held: dict[int, tuple[float, int]] = {}   # pitch -> (onset, velocity)
        self.phrase: list[tuple[float, float, int, int]] = []
        self.phrase_start: Optional[float] = None
        self.last_event: Optional[float] = None
        self.answers: list[Answer] = []
        self._lock = threading.Lock()

    # the player
    def on_message(self, msg, t: Optional[float] = None) -> None:
        t = self.clock() if t is None else t
        kind = getattr(msg, "type", "")
        with self._lock:
            if kind == "note_on" and msg.velocity > 0:
                if self.phrase_start is None:
                    self.phrase_start = t
                if msg.note in self.held:  # struck again while held: the old note ends here
                    self._release(msg.note, t)
                self.held[msg.note] = (t, msg.velocity)
                self.last_event = t
            elif kind in ("note_off", "note_on") and msg.note in self.held:
                self._release(msg.note, t)
                self.last_event = t

    def _release(self, pitch: int, t: float) -> None:
        on, vel = self.held.pop(pitch)
        self.phrase.append((on, max(t, on + 1e-3), pitch, vel))

    def tick(self, now: Optional[float] = None) -> Optional[Answer]:
        """Start an answer if the phrase just ended; returns it."""
        now = self.clock() if now is None else now
        with self._lock:
            if self.phrase_start is None:
                return None
            by_bars = self.bars is not None and now - self.phrase_start >= self.bars * 4 * 60.0 / self.qpm
            paused = not self.held and self.last_event is not None and now - self.last_event >= self.silence
            if not (by_bars or paused) or not (self.phrase or self.held):
                return None
            for pitch in list(self.held):  # bars mode: notes still down end the phrase here
                self._release(pitch, now)
            notes = np.array(sorted(self.phrase), dtype=float)
            self.phrase, self.phrase_start, self.last_event = [], None, None
        phrase = Performance.from_arrays(notes[:, 0] - notes[0, 0], notes[:, 1] - notes[0, 0],
                                         notes[:, 2].astype(int), notes[:, 3].astype(int))
        return self.respond(phrase, now)

    # the answer
    def respond(self, phrase: Performance, detected: float) -> Answer:
        if self.answers:
            self.stop_answer(self.answers[-1])
        ans = Answer(len(self.answers) + 1, phrase, detected)
        self.answers.append(ans)
        threading.Thread(target=self._play, args=(ans,), daemon=True).start()
        self.log(f"phrase of {len(phrase)} notes ({phrase.end:.1f}s): answering")
        return ans

    def _play(self, ans: Answer) -> None:
        import torch

        torch.set_num_threads(1)
        start = None
        for on, off, pitch, vel in answer_notes(self.model, ans.phrase, self.answer_seconds, seed=self.seed + ans.tag,
                                                temperature=self.temperature):
            if ans.cancel.is_set():
                return
            if start is None:  # the first note goes out as soon as it exists
                start = self.clock() + 0.002
            self.scheduler.add(start + on, Message("note_on", pitch, vel), ans.tag)
            self.scheduler.add(start + off, Message("note_off", pitch, 0), ans.tag)
            ans.notes.append((start + on, start + off, pitch))
            ahead = start + on - self.clock() - self.lookahead
            if ahead > 0 and ans.cancel.wait(ahead):  # generate ahead of the clock, not further
                return

    def stop_answer(self, ans: Answer) -> None:
        """Cancel an answer: nothing more is sent, and its sounding notes are released."""
        ans.cancel.set()
        pending = self.scheduler.drop(ans.tag)
        for m in pending:
            if m.type == "note_off":
                self.scheduler.send_now(m, ans.tag)

    def stats(self) -> dict:
        """Latency of each answer (phrase end detected -> first note sent) and the timing
        error of every message sent (sent - due), in milliseconds."""
        sent = list(self.scheduler.sent)
        first = {}
        for _, t, m, tag in sent:
            if m.type == "note_on" and tag not in first:
                first[tag] = t
        detected = {a.tag: a.detected for a in self.answers}
        latency = [1e3 * (first[tag] - detected[tag]) for tag in sorted(first) if tag in detected]
        err = np.array([t - due for due, t, _, _ in sent]) * 1e3
        return {"answers": len(self.answers), "latency_ms": latency,
                "jitter_ms": {"p50": float(np.percentile(err, 50)) if len(err) else float("nan"),
                              "p99": float(np.percentile(err, 99)) if len(err) else float("nan"),
                              "max": float(err.max()) if len(err) else float("nan")},
                "messages": len(err)}

    def close(self) -> None:
        if self.answers:
            self.stop_answer(self.answers[-1])
        self.scheduler.stop()
        self.scheduler.join(2)

    def run(self, in_port, *, poll: float = 0.002) -> None:
        """Listen to ``in_port`` until interrupted."""
        try:
            while True:
                for msg in in_port.iter_pending():
                    self.on_message(msg)
                self.tick()
                time.sleep(poll)
        finally:
            self.close()


def run_live(model_ref: str, *, in_port: Optional[str], out_port: Optional[str], silence: float = 0.5,
             bars: Optional[int] = None, qpm: float = 120.0, answer_seconds: float = 8.0, seed: int = 0,
             echo=print) -> None:
    """``tatumflow live``: open the ports, load the model, answer until Ctrl-C."""
    inp, out = open_ports(in_port, out_port)  # first: without a MIDI system, say so at once
    from ..pretrained import load_model

    model, state = load_model(model_ref)
    if state["family"] not in ("music_rnn", "tatumflow"):
        raise LiveError(f"{model_ref}: a {state['family']} model cannot answer phrases")
    session = LiveSession(model.eval(), out, silence=silence, bars=bars, qpm=qpm, answer_seconds=answer_seconds,
                          seed=seed, log=echo)
    echo(f"listening on {inp.name}, answering on {out.name} with {model_ref} "
         f"({'after ' + str(bars) + ' bars' if bars else f'after {silence:g}s of silence'}); Ctrl-C stops")
    try:
        session.run(inp)
    except KeyboardInterrupt:
        pass
    st = session.stats()
    echo(f"{st['answers']} answers; latency ms {', '.join(f'{v:.0f}' for v in st['latency_ms'])}; "
         f"timing error p99 {st['jitter_ms']['p99']:.1f} ms")


__all__ = ["LiveSession", "Scheduler", "answer_notes", "open_ports", "run_live", "LiveError", "Message",
           "StandInPort"]
