"""Realtime generation with the Music RNN: causal, state carried, constant cost per note.

:class:`NoteStreamer` primes the LSTM with a prompt, then produces one note at a
time by feeding each sampled note back with the recurrent state; the cost of a
note does not grow with the length of the piece. Sinks receive notes as they
are made: :class:`MidiFileSink` keeps a MIDI file up to date on disk (rewritten
atomically), :class:`MidiPortSink` plays them on a MIDI port in real time
(mido with python-rtmidi; a virtual port where the OS allows).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from ...errors import TatumFlowError
from ...midi.io import write_midi
from ...midi.playback import Message, Scheduler
from ...performance import Performance
from .data import performance_to_notes
from .model import TIME_BIN, MusicRNN


MAX_CHORD = 8  # most notes a generated chord may stack at one instant
PIANO = (21, 108)  # the pitches a generated note may take (A0..C8)


class NoteStreamer:
    def __init__(self, model: MusicRNN, *, temperature: float = 1.0, seed: int = 0,
                 velocity: int = 80, min_duration: float = 0.02):
        """``velocity``: every note's velocity for a model without a velocity head
        (one with it samples each note's)."""
        model.check_causal()
        if temperature <= 0:
            raise TatumFlowError(f"temperature must be > 0, got {temperature}")
        self.model = model.eval()
        self.temperature = temperature
        self.gen = torch.Generator().manual_seed(seed)
        self.velocity = velocity
        self.min_duration = min_duration
        self.state = None
        self.heads = None
        self.time = 0.0
        self.same_onset = 0  # notes sampled at the current instant (a chord)

    @torch.no_grad()
    def prime(self, notes: np.ndarray, *, start: float = 0.0) -> None:
        """Feed a prompt of (N, 4) notes (pitch, step, duration, velocity) whose first note
        sounds at ``start`` seconds; time continues from the prompt's last onset."""
        if len(notes) == 0:
            notes = np.array([[60, 0.0, 0.5, self.velocity]], dtype=np.float32)
        x = torch.as_tensor(notes, dtype=torch.float32)[None]
        self.heads, self.state = self.model(x, self.state)
        self.time = start + float(np.sum(notes[1:, 1], dtype=np.float64))  # steps after the first note

    @torch.no_grad()
    def next_note(self) -> tuple[int, float, float, int]:
        """Sample the next (pitch, step, duration, velocity) and advance the state by one
        note. Step and duration are sampled from categorical time heads, the means of
        regression heads (the seed's model); velocity is sampled when the model has
        the head."""
        if self.heads is None:
            raise TatumFlowError("prime the streamer with a prompt first")
        logits, step, dur, vel = (h[0, -1] if h is not None else None for h in self.heads)
        logits = logits.clone()
        logits[:PIANO[0]] = logits[PIANO[1] + 1:] = float("-inf")  # only the 88 keys
        probs = torch.softmax(logits / self.temperature, -1)
        pitch = int(torch.multinomial(probs, 1, generator=self.gen))
        bins = self.model.bins
        if bins is not None:
            step_s = bins.sample(step, self.temperature, self.gen)
            dur_s = bins.sample(dur, self.temperature, self.gen)
        else:
            step_s, dur_s = max(float(step), 0.0), float(dur)
        velocity = self.velocity
        if vel is not None:
            velocity = int(torch.multinomial(torch.softmax(vel[1:] / self.temperature, -1), 1,
                                             generator=self.gen)) + 1
        # A model that keeps predicting "no time passes" would never end the piece:
        # after MAX_CHORD notes at one instant, time moves on by at least one 10 ms bin.
        self.same_onset = self.same_onset + 1 if step_s < TIME_BIN / 2 else 0
        if self.same_onset >= MAX_CHORD:
            step_s, self.same_onset = TIME_BIN, 0
        dur_s = max(dur_s, self.min_duration)
        self.heads, self.state = self.model(torch.tensor([[[pitch, step_s, dur_s, velocity]]], dtype=torch.float32),
                                            self.state)
        self.time += step_s
        return pitch, step_s, dur_s, velocity

    def stream(self, seconds: float) -> Iterator[tuple[float, float, int, int]]:
        """(onset s, offset s, pitch, velocity) of new notes until ``seconds`` of music
        after the prompt."""
        end = self.time + seconds
        while True:
            pitch, _, dur, velocity = self.next_note()
            if self.time >= end:
                return
            yield self.time, self.time + dur, pitch, velocity


class MidiFileSink:
    """Collects notes and rewrites ``path`` atomically every ``every`` notes and at close."""

    def __init__(self, path: "str | Path", *, prompt: Optional[Performance] = None, every: int = 16):
        self.path = Path(path)
        self.notes: list[tuple[float, float, int, int]] = []
        self.prompt = prompt
        self.every = every

    def performance(self) -> Performance:
        on, off, pit, vel = (list(c) for c in zip(*self.notes)) if self.notes else ([], [], [], [])
        gen = Performance.from_arrays(on, off, pit, vel, metadata={"source": str(self.path)})
        if self.prompt is None or not len(self.prompt):
            return gen
        return gen.replace(notes=np.concatenate([self.prompt.notes, gen.notes]))

    def __call__(self, note: tuple[float, float, int, int]) -> None:
        self.notes.append(note)
        if len(self.notes) % self.every == 0:
            write_midi(self.performance(), self.path)

    def close(self) -> Performance:
        perf = self.performance()
        write_midi(perf, self.path)
        return perf


class MidiPortSink:
    """Plays notes on a MIDI output port in time: each note is handed to a due-time
    :class:`~tatumflow.midi.playback.Scheduler` as soon as it is generated, and the
    generator is held at most ``lookahead`` seconds ahead of the clock. The clock starts
    ``prebuffer`` seconds after the first note exists, so the generator is ahead
    from the first note on (a dense opening or a file write cannot make a note late),
    and a chord's notes leave together."""

    def __init__(self, port=None, *, lookahead: float = 0.25, prebuffer: float = 0.1):
        """``port``: a port name, ``None`` (a virtual port "TatumFlow"), or an object with
        ``send(message)`` (a mido port, a :class:`~tatumflow.midi.playback.StandInPort`)."""
        if port is None or isinstance(port, str):
            port = _open_output(port)
        self.port, self.lookahead, self.prebuffer = port, lookahead, prebuffer
        self.scheduler = Scheduler(port)
        self.scheduler.start()
        self.start: Optional[float] = None
        self.first_onset = 0.0

    def __call__(self, note: tuple[float, float, int, int]) -> None:
        onset, offset, pitch, velocity = note
        if self.start is None:  # the first note sounds prebuffer seconds after it exists
            self.start, self.first_onset = time.perf_counter() + self.prebuffer, onset
        due = self.start + onset - self.first_onset
        self.scheduler.add(due, Message("note_on", int(pitch), int(velocity)))
        self.scheduler.add(self.start + offset - self.first_onset, Message("note_off", int(pitch), 0))
        ahead = due - time.perf_counter() - self.lookahead
        if ahead > 0:
            time.sleep(ahead)

    def lateness_ms(self) -> np.ndarray:
        """How late each sent message left (ms; the timing error)."""
        return np.array([sent - due for due, sent, _, _ in self.scheduler.sent]) * 1e3

    def close(self) -> None:
        self.scheduler.drain()
        self.scheduler.stop()
        self.scheduler.join(2)
        self.port.close()


def _open_output(port_name: Optional[str]):
    try:
        import mido
    except ImportError:
        raise TatumFlowError("live output needs mido and python-rtmidi: pip install mido python-rtmidi") from None
    try:
        return mido.open_output(port_name) if port_name else mido.open_output("TatumFlow", virtual=True)
    except Exception as exc:  # no MIDI system (e.g. no ALSA sequencer), unknown port, ...
        try:
            names = ", ".join(mido.get_output_names()) or "none"
        except Exception:
            names = "none: the MIDI system is unavailable"
        raise TatumFlowError(f"cannot open MIDI output {port_name or '(virtual port TatumFlow)'}: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__} "
                             f"(available outputs: {names})") from None


class NotePipeline:
    """The Music RNN as the scorecard drives it (:attr:`Family.pipeline`):
    continuation and bits per note."""

    def __init__(self, model: MusicRNN, device="cpu", *, steps=None):  # steps: no denoising here
        model.check_causal()
        self.model = model.eval()

    def continuation(self, prompt: Performance, seconds: float = 20.0, *, seed: int = 0,
                     temperature: float = 1.0) -> Performance:
        """The prompt followed by ``seconds`` of new notes."""
        streamer = NoteStreamer(self.model, temperature=temperature, seed=seed)
        streamer.prime(performance_to_notes(prompt), start=float(prompt.notes["onset"].min()) if len(prompt) else 0.0)
        new = np.array(list(streamer.stream(seconds)), dtype=np.float64).reshape(-1, 4)
        gen = Performance.from_arrays(new[:, 0], new[:, 1], new[:, 2].astype(int), new[:, 3].astype(int))
        return prompt.replace(notes=np.concatenate([prompt.notes, gen.notes])) if len(prompt) else gen

    @torch.no_grad()
    def bits_per_note(self, pieces, starts, *, batch: int = 512, **_) -> dict:
        """Bits per note of each piece's notes from ``starts[i]`` seconds on, each
        given the ``seq_len`` notes before it (notes earlier than that are not scored)."""
        n = self.model.config.seq_len
        bits, vbits = [], []
        for perf, start in zip(pieces, starts):
            notes = torch.as_tensor(performance_to_notes(perf))
            first = max(int(np.searchsorted(perf.notes["onset"], start - 1e-9)), n)
            if len(notes) <= first:
                continue
            win = notes.unfold(0, n + 1, 1).permute(0, 2, 1)[first - n:]  # (W, n + 1, 4): windows ending at a scored note
            for i in range(0, len(win), batch):
                w = win[i: i + batch]
                heads, _ = self.model(w[:, :-1])
                b, vb = self.model.note_bits(tuple(h[:, -1] if h is not None else None for h in heads), w[:, -1])
                bits.append(b.numpy())
                if vb is not None:
                    vbits.append(vb.numpy())
        if not bits:
            raise TatumFlowError("no music to score after the given starts")
        b = np.concatenate(bits)
        return {"notes": int(len(b)), "bits_per_note": float(b.mean()),
                "velocity_bits_per_note": float(np.concatenate(vbits).mean()) if vbits else float("nan")}


def generate_from_prompt(model: MusicRNN, prompt: Performance, seconds: float, out: "str | Path", *,
                         temperature: float = 1.0, seed: int = 0, live: bool = False,
                         port=None) -> dict:
    """Continue ``prompt`` for ``seconds``; write ``out`` as notes are produced (and
    play them live when asked: ``port`` is a port name, or a port object such as a
    :class:`~tatumflow.midi.playback.StandInPort`). Returns the performance, the
    realtime factor and, live, each message's lateness (ms)."""
    import torch

    streamer = NoteStreamer(model, temperature=temperature, seed=seed)
    streamer.prime(performance_to_notes(prompt), start=float(prompt.notes["onset"].min()) if len(prompt) else 0.0)
    sinks = [MidiFileSink(out, prompt=prompt)]
    if live:
        sinks.append(MidiPortSink(port))
    threads = torch.get_num_threads()
    if live:
        torch.set_num_threads(1)  # the scheduler's thread keeps a core's worth of room
    t0 = time.perf_counter()
    compute = 0.0
    n = 0
    late = None
    try:
        it = streamer.stream(seconds)
        while True:
            c0 = time.perf_counter()
            try:
                note = next(it)
            except StopIteration:
                compute += time.perf_counter() - c0
                break
            compute += time.perf_counter() - c0
            n += 1
            for s in sinks:
                s(note)
        perf = sinks[0].close()
        for s in sinks[1:]:
            s.close()
            late = s.lateness_ms()
    finally:
        torch.set_num_threads(threads)
    return {"performance": perf, "notes": n, "compute_seconds": compute,
            "wall_seconds": time.perf_counter() - t0,
            "realtime_factor": seconds / compute if compute > 0 else float("inf"), "lateness_ms": late}


# ---------------------------------------------------------------- the family's generate command
def add_generate_options(g) -> None:
    """The Music RNN's own ``generate`` options (the CLI adds the shared ones)."""
    g.add_argument("--live", action="store_true", help="also play on a MIDI port (mido + python-rtmidi)")
    g.add_argument("--port", help="MIDI output port name (default: a virtual port 'TatumFlow')")


def generate_command(model: MusicRNN, opts: dict, *, device="cpu", echo=print) -> list[Path]:
    """``tatumflow generate`` for a Music RNN checkpoint: continue ``--prompt`` (default:
    a single middle C), writing the file as notes are produced."""
    from ...midi import read_midi

    if opts.get("mode") not in (None, "continuation"):
        raise TatumFlowError(f"a music_rnn model only continues prompts (--mode continuation), "
                             f"not --mode {opts['mode']}")
    if opts.get("prompt"):
        prompt = read_midi(opts["prompt"])
        if opts.get("prompt_seconds"):
            prompt = prompt.slice(0, opts["prompt_seconds"])
    else:
        prompt = Performance.from_arrays([0.0], [0.5], [60], [80])
    n = opts.get("rerank") or 1
    if n > 1:  # generate-then-judge: N candidates, the scorer's favourite kept
        from ...generation.rerank import Scorer, new_part, rerank

        if opts["live"]:
            raise TatumFlowError("--rerank needs every candidate before the first note plays; drop --live")
        scorer = opts.get("scorer") or Scorer("style")  # the CLI builds the named one
        pipe = NotePipeline(model)
        t0 = time.perf_counter()
        perf, _ = rerank(lambda sd: pipe.continuation(prompt, opts["seconds"], seed=sd,
                                                      temperature=opts["temperature"]),
                         n, scorer, seed=opts["seed"], performance=lambda p: new_part(p, prompt), echo=echo)
        write_midi(perf, opts["out"])
        compute = time.perf_counter() - t0
        res = {"performance": perf, "notes": len(perf) - len(prompt), "compute_seconds": compute,
               "realtime_factor": n * opts["seconds"] / compute if compute > 0 else float("inf")}
    else:
        res = generate_from_prompt(model, prompt, opts["seconds"], opts["out"], temperature=opts["temperature"],
                                   seed=opts["seed"], live=opts["live"], port=opts["port"])
    echo(f"{opts['out']}: {res['notes']} new notes, {opts['seconds']:g}s of music in {res['compute_seconds']:.2f}s "
         f"of compute (realtime factor {res['realtime_factor']:.0f}x)")
    paths = [Path(opts["out"])]
    if opts.get("pianoroll"):
        from ...render import plot_pianoroll

        paths.append(plot_pianoroll(res["performance"], opts["pianoroll"],
                                    title=f"{Path(opts['out']).name} (prompt + continuation)"))
        echo(str(opts["pianoroll"]))
    return paths
