"""Style judge: how much does a set of pieces sound like one pianist?

A logistic-regression classifier over TatumFlow's theory features, computed on
fixed-length segments, separates one target pianist from everyone else. It is
trained on PiJAMA's train split, its regularisation is chosen on the val split,
and it is scored once on the test split. Note PiJAMA's split: every pianist but
Art Tatum is held out *by pianist*, so the test negatives are pianists the judge
never saw — the judge must generalise "not Tatum", not memorise players.

A piece's style score is the mean probability of its segments. The trained
judge is a small JSON file (feature names, scaler, weights): scoring needs only
numpy; training needs scikit-learn.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import MidiReadError, TatumFlowError
from ..features import feature_vector
from ..performance import Performance
from ..utils import write_json_atomic

SEGMENT_SECONDS = 30.0
MAX_SEGMENTS_PER_PIECE = 12
DEFAULT_JUDGE = Path(__file__).with_name("judges") / "art_tatum.json"


def segments(perf: Performance, *, seconds: float = SEGMENT_SECONDS,
             max_segments: int = MAX_SEGMENTS_PER_PIECE) -> list[Performance]:
    """Consecutive ``seconds``-long spans with at least 16 notes (evenly spread, at most
    ``max_segments``); a piece shorter than one span is one segment."""
    n = max(1, int(perf.end // seconds))
    starts = np.arange(n) * seconds
    if n > max_segments:
        starts = starts[np.linspace(0, n - 1, max_segments).round().astype(int)]
    out = [perf.slice(s, s + seconds) for s in starts] if n > 1 else [perf]
    return [s for s in out if len(s) >= 16] or [perf]


def segment_features(perfs: Sequence[Performance]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature rows of every segment of every piece, and the piece index of each row."""
    segs, owner = [], []
    for i, p in enumerate(perfs):
        s = segments(p)
        segs.extend(s)
        owner.extend([i] * len(s))
    x, names = feature_vector(segs)
    return x, np.asarray(owner), names


@dataclass
class StyleJudge:
    target: str
    names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    info: dict

    def segment_proba(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept)))

    def piece_scores(self, perfs: Sequence[Performance]) -> np.ndarray:
        """P(target pianist) of each piece: the mean over its segments."""
        if not perfs:
            return np.empty(0)
        x, owner, names = segment_features(perfs)
        if names != self.names:
            raise ValueError("style judge was trained on different features; retrain it")
        p = self.segment_proba(x)
        return np.bincount(owner, weights=p, minlength=len(perfs)) / np.bincount(owner, minlength=len(perfs))

    def save(self, path: "str | os.PathLike") -> Path:
        return write_json_atomic(path, {
            "format": 1, "target": self.target, "names": self.names,
            "mean": self.mean.tolist(), "scale": self.scale.tolist(),
            "coef": self.coef.tolist(), "intercept": self.intercept, "info": self.info,
        })

    @classmethod
    def load(cls, path: "str | os.PathLike" = DEFAULT_JUDGE) -> "StyleJudge":
        try:
            d = json.loads(Path(path).read_text())
            return cls(d["target"], d["names"], np.array(d["mean"], float), np.array(d["scale"], float),
                       np.array(d["coef"], float), float(d["intercept"]), d.get("info", {}))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            what = f"no {exc} entry" if isinstance(exc, KeyError) else str(exc)
            raise TatumFlowError(f"{path}: not a style judge ({what})") from None


def _piece_metrics(y_true: np.ndarray, score: np.ndarray) -> dict:
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    pred = score >= 0.5
    return {
        "pieces": int(len(y_true)), "positives": int(y_true.sum()),
        "accuracy": float((pred == y_true).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, pred)),
        "roc_auc": float(roc_auc_score(y_true, score)) if 0 < y_true.sum() < len(y_true) else float("nan"),
    }


def train_style_judge(index_csv: "str | os.PathLike", *, target: str = "Art Tatum",
                      column: str = "pianist", seed: int = 0,
                      progress: Callable[[str], None] = print) -> StyleJudge:
    """Train on the train split, choose C on val, report train/val/test piece metrics."""
    from sklearn.linear_model import LogisticRegression
    from tqdm import tqdm

    from ..corpus.sources import from_csv
    from ..midi import read_midi

    files = from_csv(Path(index_csv))
    if not any(column in f.meta for f in files):
        raise TatumFlowError(f"{index_csv}: no {column!r} column to find {target!r} in")
    by_split: dict[str, tuple[list[Performance], np.ndarray]] = {}
    failures = []
    for split in ("train", "val", "test"):
        perfs, y = [], []
        for f in tqdm([f for f in files if f.split == split], desc=f"read {split}", unit="file", leave=False):
            try:  # one unreadable file never stops the job; it is reported
                perfs.append(read_midi(f.path))
                y.append(f.meta.get(column) == target)
            except MidiReadError as exc:
                failures.append({"path": str(f.path), "reason": exc.reason})
        by_split[split] = (perfs, np.array(y, bool))
        if len(set(y)) < 2:
            raise TatumFlowError(f"{index_csv}: the {split} split needs pieces of {target!r} and of others "
                                 f"(has {int(sum(y))} of {len(y)} readable)")
    feats = {}
    for split, (perfs, y) in by_split.items():
        x, owner, names = segment_features(perfs)
        feats[split] = (x, owner, y)
        progress(f"{split}: {len(perfs)} pieces ({int(y.sum())} {target}), {len(x)} segments")
    x_tr, own_tr, y_tr = feats["train"]
    mean, scale = x_tr.mean(0), x_tr.std(0)
    scale[scale == 0] = 1.0

    def fit(c: float):
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
        clf.fit((x_tr - mean) / scale, y_tr[own_tr])
        return StyleJudge(target, names, mean, scale, clf.coef_[0], float(clf.intercept_[0]), {})

    def score(judge: StyleJudge, split: str) -> np.ndarray:
        x, owner, y = feats[split]
        p = judge.segment_proba(x)
        return np.bincount(owner, weights=p, minlength=len(y)) / np.bincount(owner, minlength=len(y))

    best = None
    for c in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0):
        judge = fit(c)
        m = _piece_metrics(feats["val"][2], score(judge, "val"))
        progress(f"C={c:g}: val balanced accuracy {m['balanced_accuracy']:.3f}, AUC {m['roc_auc']:.3f}")
        key = (m["roc_auc"], m["balanced_accuracy"])
        if best is None or key > best[0]:
            best = (key, c, judge)
    _, c, judge = best
    judge.info = {
        "trained_on": Path(index_csv).name, "column": column, "C": c,
        "caveat": "features include velocity statistics, which also carry recording and "
                  "transcription traits; a high score is necessary, not sufficient, for style",
        "segment_seconds": SEGMENT_SECONDS, "max_segments_per_piece": MAX_SEGMENTS_PER_PIECE,
        **{split: _piece_metrics(feats[split][2], score(judge, split)) for split in ("train", "val", "test")},
        "failures": failures,
    }
    return judge


def load_default_judge() -> Optional[StyleJudge]:
    return StyleJudge.load(DEFAULT_JUDGE) if DEFAULT_JUDGE.exists() else None
