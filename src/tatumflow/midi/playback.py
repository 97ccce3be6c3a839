"""Sending notes in time: a due-time scheduler, plain note messages, a stand-in port.

Whoever produces notes (a generator, a live answer) hands each message to a
:class:`Scheduler` with the time it is due and goes on computing; the
scheduler's thread sends it at that time (sleep, then a short spin), so compute
never makes a note late and the notes of a chord leave together. A port is any
object with ``send(message)``: a mido output port, or a :class:`StandInPort`
that records what it was sent (tests and benchmarks without a MIDI system).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable


class StandInPort:
    """An output port that keeps what it is sent, with the time it was sent: to test or
    measure a session where there is no MIDI system."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.got, self.clock, self.lock = [], clock, threading.Lock()

    def send(self, msg) -> None:
        with self.lock:
            self.got.append((self.clock(), msg))

    def close(self) -> None:
        pass


class Message:
    """A plain note message (what the session sends; mido-compatible attributes)."""

    __slots__ = ("type", "note", "velocity")

    def __init__(self, type: str, note: int, velocity: int = 0):
        self.type, self.note, self.velocity = type, note, velocity

    def __repr__(self) -> str:
        return f"Message({self.type}, note={self.note}, velocity={self.velocity})"


class Scheduler(threading.Thread):
    """Sends each message at its due time; keeps (due, sent) of every send."""

    def __init__(self, port, clock: Callable[[], float] = time.perf_counter, spin: float = 0.002):
        super().__init__(daemon=True)
        self.port, self.clock, self.spin = port, clock, spin
        self.queue: list = []
        self.cv = threading.Condition()
        self.sent: list[tuple[float, float, object, int]] = []  # (due, sent, message, answer tag)
        self.stopped = False
        self._seq = itertools.count()

    def add(self, due: float, msg, tag: int = 0) -> None:
        with self.cv:
            heapq.heappush(self.queue, (due, next(self._seq), tag, msg))
            self.cv.notify()

    def drop(self, tag: int) -> list:
        """Remove the pending messages of answer ``tag``; returns them."""
        with self.cv:
            gone = [q for q in self.queue if q[2] == tag]
            self.queue = [q for q in self.queue if q[2] != tag]
            heapq.heapify(self.queue)
        return [q[3] for q in gone]

    def send_now(self, msg, tag: int = 0) -> None:
        now = self.clock()
        self.port.send(msg)
        self.sent.append((now, self.clock(), msg, tag))

    def run(self) -> None:
        while True:
            with self.cv:
                while not self.stopped and not self.queue:
                    self.cv.wait()
                if self.stopped and not self.queue:
                    return
                due = self.queue[0][0]
                wait = due - self.clock() - self.spin
                if wait > 0:
                    self.cv.wait(wait)  # woken early by an earlier message: look again
                    continue
                due, _, tag, msg = heapq.heappop(self.queue)
            while self.clock() < due:  # the last ~2 ms: spin, sleeping gives them away
                pass
            self.port.send(msg)
            self.sent.append((due, self.clock(), msg, tag))

    def drain(self) -> None:
        """Wait until every queued message has been sent."""
        while True:
            with self.cv:
                if not self.queue:
                    return
                last = max(q[0] for q in self.queue)
            time.sleep(max(0.005, min(0.1, last - self.clock())))

    def stop(self) -> None:
        with self.cv:
            self.stopped = True
            self.cv.notify()
