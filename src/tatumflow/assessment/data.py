"""PercePiano: performance segments, their 19 perceptual ratings, and who played what.

The dataset (Park et al., 2024; MIT licence) is read from its folder (``midi/``
and the label JSON); nothing is copied. Segment names are
``<piece>_<N>bars_<player>_<segment>``; ``Score``/``Score2`` players are deadpan
renditions of the score. The label file's 20th value is a player index and is
never used as a target or a feature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import TatumFlowError

#: The 19 rated dimensions, in label order (low end / high end of each scale).
DIMENSIONS = (
    "timing.stable-unstable",
    "articulation.short-long",
    "articulation.soft_cushioned-hard_solid",
    "pedal.sparse_dry-saturated_wet",
    "pedal.clean-blurred",
    "timbre.even-colorful",
    "timbre.shallow-rich",
    "timbre.bright-dark",
    "timbre.soft-loud",
    "dynamic.sophisticated_mellow-raw_crude",
    "dynamic.little-large_range",
    "music_making.fast-slow_paced",
    "music_making.flat-spacious",
    "music_making.disproportioned-balanced",
    "music_making.pure-dramatic_expressive",
    "emotion.optimistic_pleasant-dark",
    "emotion.low-high_energy",
    "emotion.honest-imaginative",
    "interpretation.unsatisfactory-convincing",
)
N_DIMS = len(DIMENSIONS)
LABELS_FILE = "label_2round_mean_reg_19_with0_rm_highstd0.json"
SCORE_PLAYERS = ("Score", "Score2")


class PercePianoError(TatumFlowError):
    """The PercePiano folder is missing or not as documented."""


@dataclass(frozen=True)
class SegmentName:
    name: str
    piece: str
    bars: int
    player: str
    segment: str

    @property
    def excerpt(self) -> str:
        """The passage: the same excerpt played by different performers."""
        return f"{self.piece}_{self.bars}bars_{self.segment}"

    @property
    def is_score(self) -> bool:
        return self.player in SCORE_PLAYERS

    @property
    def composer(self) -> str:
        return self.piece.split("_")[0]


def parse_name(name: str) -> SegmentName:
    """``Schubert_D960_mv3_8bars_12_01`` -> piece ``Schubert_D960_mv3``, 8 bars, player 12, segment 01."""
    stem = name[:-4] if name.endswith(".mid") else name
    stem = stem.replace("\\", "/").rsplit("/", 1)[-1]
    parts = stem.split("_")
    if len(parts) < 4 or not parts[-3].endswith("bars") or not parts[-3][:-4].isdigit():
        raise PercePianoError(f"{name}: not a PercePiano segment name (<piece>_<N>bars_<player>_<segment>)")
    return SegmentName(stem, "_".join(parts[:-3]), int(parts[-3][:-4]), parts[-2], parts[-1])


@dataclass
class PercePiano:
    """The labelled segments, aligned arrays (one row per segment, sorted by name)."""

    root: Path
    names: list[str]
    ratings: np.ndarray          # (N, 19), each the raters' mean on 1..7 divided by 7
    rating_std: np.ndarray       # (N, 19), the raters' spread
    segments: list[SegmentName]
    take_group: np.ndarray       # (N,) excerpts linked by shared music (8 in 16 bars), int ids

    def __len__(self) -> int:
        return len(self.names)

    @property
    def paths(self) -> list[Path]:
        return [self.root / "midi" / f"{n}.mid" for n in self.names]

    @property
    def players(self) -> np.ndarray:
        return np.array([s.player for s in self.segments])

    @property
    def excerpts(self) -> np.ndarray:
        return np.array([s.excerpt for s in self.segments])

    @property
    def pieces(self) -> np.ndarray:
        return np.array([s.piece for s in self.segments])

    @property
    def is_score(self) -> np.ndarray:
        return np.array([s.is_score for s in self.segments])

    def performances(self, progress: bool = False):
        """Read every segment's MIDI (a clear error names a broken file)."""
        from tqdm import tqdm

        from ..midi import read_midi

        return [read_midi(p) for p in tqdm(self.paths, desc="read PercePiano", unit="file", disable=not progress)]


def default_root() -> Path:
    """``../shared/data/percepiano`` next to the repository (the project layout)."""
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "percepiano"


def load_percepiano(root: "str | Path | None" = None, *, link_takes: bool = True) -> PercePiano:
    """Load the labelled segments of PercePiano from ``root`` (default: the shared data)."""
    root = Path(root) if root is not None else default_root()
    lab = root / LABELS_FILE
    if not lab.is_file():
        raise PercePianoError(f"{root}: no {LABELS_FILE} (is this the PercePiano folder?)")
    labels = json.loads(lab.read_text())
    std_file = root / LABELS_FILE.replace("_mean_", "_std_")
    stds = json.loads(std_file.read_text()) if std_file.is_file() else {}
    names = sorted(labels)
    missing = [n for n in names if not (root / "midi" / f"{n}.mid").is_file()]
    if missing:
        raise PercePianoError(f"{root / 'midi'}: {len(missing)} labelled segments have no MIDI file, e.g. {missing[0]}.mid")
    bad = [n for n in names if len(labels[n]) != N_DIMS + 1]
    if bad:
        raise PercePianoError(f"{lab}: {bad[0]} has {len(labels[bad[0]])} values, expected 19 ratings + player index")
    ratings = np.array([labels[n][:N_DIMS] for n in names], dtype=np.float64)
    rstd = np.array([stds[n][:N_DIMS] if n in stds else [np.nan] * N_DIMS for n in names], dtype=np.float64)
    segs = [parse_name(n) for n in names]
    data = PercePiano(root, names, ratings, rstd, segs, np.zeros(len(names), np.int64))
    data.take_group = _take_groups(data) if link_takes else _index(data.excerpts)
    return data


def _index(keys) -> np.ndarray:
    return np.unique(np.asarray(keys), return_inverse=True)[1].astype(np.int64)


def _score_key(path: Path) -> Optional[bytes]:
    """What a score says, independent of where it sits: its notes in reading order as
    (pitch, onset step from the first note at 10 ms, duration at 10 ms)."""
    from ..midi import read_midi

    n = read_midi(path).notes
    if not len(n):
        return None
    o = np.lexsort((n["pitch"], np.round(n["onset"], 2)))
    on = np.round((n["onset"][o] - n["onset"].min()) * 100).astype(np.int64)
    dur = np.round((n["offset"][o] - n["onset"][o]) * 100).astype(np.int64)
    return np.stack([n["pitch"][o].astype(np.int64), on, dur], 1).tobytes()


def repeated_passages(data: PercePiano) -> list[set[str]]:
    """Excerpts of one piece whose scores are the same music (a repeat under another
    segment number), found by comparing the scores in ``score_midi/``; each set has 2+."""
    from ..align import score_for_segment

    by_music: dict[tuple[str, bytes], set[str]] = {}
    for name, seg in zip(data.names, data.segments):
        path = score_for_segment(data.root, name)
        key = _score_key(path) if path is not None else None
        if key is not None:
            by_music.setdefault((f"{seg.piece}_{seg.bars}", key), set()).add(seg.excerpt)
    return [g for g in by_music.values() if len(g) > 1]


def _take_groups(data: PercePiano, k: int = 16) -> np.ndarray:
    """Group ids joining excerpts that share music (union-find): an 8-bar segment whose
    first ``k`` pitches occur, in order, inside a 16-bar segment of the same piece and
    player comes from the same take; and excerpts whose scores are the same music
    (:func:`repeated_passages`) are one passage. A grouped split keeps each group on
    one side."""
    from ..midi import read_midi

    exc = data.excerpts
    parent = {e: e for e in exc}

    def find(e):
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    by_key: dict[tuple[str, str, int], list[int]] = {}
    for i, s in enumerate(data.segments):
        by_key.setdefault((s.piece, s.player, s.bars), []).append(i)
    pitches: dict[int, np.ndarray] = {}

    def pitch_seq(i):
        if i not in pitches:
            pitches[i] = read_midi(data.paths[i]).notes["pitch"].astype(np.int64)
        return pitches[i]

    for (piece, player, bars), longs in by_key.items():
        shorts = by_key.get((piece, player, bars // 2), []) if bars >= 16 else []
        if not shorts:
            continue
        for i in longs:
            seq = pitch_seq(i)
            if len(seq) < k:
                continue
            win = np.lib.stride_tricks.sliding_window_view(seq, k)
            for j in shorts:
                head = pitch_seq(j)[:k]
                if len(head) == k and bool((win == head).all(1).any()):
                    parent[find(exc[j])] = find(exc[i])
    for same in repeated_passages(data):
        first, *rest = sorted(same)
        for e in rest:
            parent[find(e)] = find(first)
    return _index([find(e) for e in exc])


RAW_RATINGS = "total_2rounds.csv"


def rater_ceiling(root: "str | Path | None" = None, *, splits: int = 50, seed: int = 0) -> dict:
    """How well the raters agree with themselves, and what that allows a model.

    Split each segment's raters in two random halves, correlate the two halves'
    mean ratings across segments (per dimension, and within excerpt: across the
    performances of one passage) and step the correlation up to the whole panel
    (Spearman-Brown, 2r / (1 + r)): the *reliability* of the panel's mean, averaged
    over ``splits`` random splits. A model that knew the true ratings would
    correlate with the panel's mean at sqrt(reliability): the *ceiling* reported
    for mean r and within-excerpt r."""
    import csv

    from .metrics import pearson_per_dim, within_group_r

    root = Path(root) if root is not None else default_root()
    path = root / RAW_RATINGS
    if not path.is_file():
        raise PercePianoError(f"{root}: no {RAW_RATINGS} (the raw ratings)")
    by_seg: dict[str, list[list[float]]] = {}
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        head = next(rows)
        # the 19 dimensions are the first 19 questions, in label order; a 20th question
        # (Question_9_2_1, mostly empty) is not one of them
        q = [i for i, h in enumerate(head) if h.startswith("Question_")][:N_DIMS]
        if len(q) != N_DIMS:
            raise PercePianoError(f"{path}: expected {N_DIMS} question columns, found {len(q)}")
        f = head.index("filename")
        for r in rows:
            try:
                vals = [float(r[i]) for i in q]
            except (ValueError, IndexError):
                continue
            by_seg.setdefault(Path(r[f]).stem, []).append(vals)
    names = sorted(n for n, v in by_seg.items() if len(v) >= 2)
    ratings = [np.array(by_seg[n]) for n in names]
    excerpts = np.array([parse_name(n).excerpt for n in names])
    rng = np.random.default_rng(seed)
    r_all, r_within = [], []
    for _ in range(splits):
        a, b = [], []
        for m in ratings:
            perm = rng.permutation(len(m))
            h = len(m) // 2
            a.append(m[perm[:h]].mean(0))
            b.append(m[perm[h:]].mean(0))
        a, b = np.array(a), np.array(b)
        r_all.append(pearson_per_dim(a, b))
        r_within.append(within_group_r(a, b, excerpts))
    sb = lambda r: 2 * r / (1 + r)  # noqa: E731
    rel, rel_w = sb(np.mean(r_all, 0)), sb(np.nanmean(r_within, 0))
    ceil, ceil_w = np.sqrt(np.clip(rel, 0, 1)), np.sqrt(np.clip(rel_w, 0, 1))
    return {"segments": len(names), "raters_per_segment": float(np.mean([len(m) for m in ratings])),
            "splits": splits, "reliability": {"mean_r": float(rel.mean()), "within_excerpt_r": float(np.nanmean(rel_w))},
            "mean_r": float(ceil.mean()), "within_excerpt_r": float(np.nanmean(ceil_w)),
            "per_dim": {"r": ceil.tolist(), "within_excerpt_r": ceil_w.tolist(),
                        "reliability": rel.tolist(), "reliability_within": rel_w.tolist()}}
