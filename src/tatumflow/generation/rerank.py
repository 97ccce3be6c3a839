"""Generate-then-judge: draw N candidates, keep the one a named scorer likes best.

Scorers (each maps a performance to a number, higher is better):

* ``style``: the style judge's P(target pianist) (the judge shipped in the
  package, Art Tatum vs the other PiJAMA pianists, or a given judge file);
* ``interpretation``: the assessor's *interpretation* rating
  (unsatisfactory .. convincing, 1..7);
* ``music-making``: the assessor's *music making* balance rating
  (disproportioned .. balanced, 1..7): the one *music making* scale whose high
  end is better, not just different.

What is scored is the new music only: a continuation's notes after its prompt,
a transformation's whole output.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import TatumFlowError
from ..performance import Performance

SCORERS = ("style", "interpretation", "music-making")
ASSESSOR_SCALES = {"interpretation": "interpretation.unsatisfactory-convincing",
                   "music-making": "music_making.disproportioned-balanced"}


class Scorer:
    """``scorer(performances) -> scores`` (one per performance; higher is better).

    ``style`` is built here (the style judge); the assessor's scales need ``rater``,
    a function from a performance to that scale's rating, which the layer that owns
    the assessor passes in (``tatumflow.cli.commands.make_scorer``)."""

    def __init__(self, name: str = "style", *, judge_path=None,
                 rater: Optional[Callable[[Performance], float]] = None):
        if name not in SCORERS:
            raise TatumFlowError(f"--rerank-by must be one of {', '.join(SCORERS)}, got {name!r}")
        self.name, self.rater = name, rater
        if name == "style":
            from ..evaluation.style import DEFAULT_JUDGE, StyleJudge

            self.judge = StyleJudge.load(judge_path or DEFAULT_JUDGE)
            self.label = f"P({self.judge.target})"
        elif rater is None:
            raise TatumFlowError(f"the {name} scorer needs the assessor's rater")
        else:
            self.label = f"{name} rating (1-7)"

    def __call__(self, perfs: Sequence[Performance]) -> np.ndarray:
        perfs = list(perfs)
        out = np.full(len(perfs), -np.inf)  # an empty candidate loses
        keep = [i for i, p in enumerate(perfs) if len(p)]
        if not keep:
            return out
        if self.name == "style":
            out[keep] = self.judge.piece_scores([perfs[i] for i in keep])
        else:
            out[keep] = [float(self.rater(perfs[i])) for i in keep]
        return out


def new_part(perf: Performance, prompt: Optional[Performance]) -> Performance:
    """The notes of ``perf`` after ``prompt`` (its last onset); all of ``perf`` without one."""
    if prompt is None or not len(prompt) or not len(perf):
        return perf
    start = float(prompt.notes["onset"].max()) + 1e-6
    return perf.slice(start, max(perf.end, start) + 1.0)


def rerank(make: Callable[[int], object], n: int, scorer: Scorer, *, seed: int = 0,
           performance: Callable[[object], Performance] = lambda r: r, echo=None):
    """Draw ``n`` candidates ``make(seed + i)`` and return ``(best, scores)``; each
    candidate's music is ``performance(candidate)`` (what is scored)."""
    if n < 1:
        raise TatumFlowError(f"--rerank must be >= 1, got {n}")
    cands = [make(seed + i) for i in range(n)]
    scores = scorer([performance(c) for c in cands])
    best = int(np.argmax(scores))
    if echo is not None:
        for i, s in enumerate(scores):
            echo(f"candidate {i + 1}/{n} (seed {seed + i}): {scorer.label} {s:.4g}{'  <- kept' if i == best else ''}")
    return cands[best], scores
