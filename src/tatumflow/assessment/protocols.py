"""Evaluation protocols: which segments train, validate and test each model.

* ``excerpt`` — 4-fold cross-validation grouped by passage; 8- and 16-bar segments
  of the same take (and repeats of the same music) share a group
  (:func:`~.data._take_groups`), so no music is on both sides. Out-of-fold
  predictions of all 4 folds are scored together.
* ``player`` — 4-fold cross-validation grouped by performer (both Score renditions
  are one "player").
* ``piece`` — leave one piece out (a movement, a theme or one variation): no
  passage of the tested piece was heard in training. Pooled like ``excerpt``.
* ``paper-performer`` / ``paper-piece`` — the published PercePiano splits, as the
  dataset's own code defines them: one fixed test set and 4 validation folds
  over the rest; each fold's model is scored on the test set and the 4 scores are
  averaged (the paper's R²). The published piece split leaks: it groups segments by
  excerpt name only, so 16-bar takes and their 8-bar cuts, and repeated passages,
  land on both sides (:func:`shared_music` counts them; ``assess-cv`` prints it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .data import PercePiano

PROTOCOLS = ("excerpt", "player", "piece", "paper-performer", "paper-piece")
#: Protocols meant to test on music the model never heard (the performer splits test
#: new players on music heard in training, by design).
HOLDS_OUT_MUSIC = ("excerpt", "piece", "paper-piece")
BEETHOVEN_PLAYERS = [1, 2, 3, 4, 7, 11, 14, 18, 19, 22, 24, 26]


@dataclass(frozen=True)
class Fold:
    train: np.ndarray
    val: np.ndarray     # held out for model selection / early stopping (may be empty)
    test: np.ndarray    # scored


@dataclass(frozen=True)
class Protocol:
    name: str
    folds: list[Fold]
    pooled: bool  # True: score the union of the folds' test predictions; False: average per-fold scores


def _group_kfold(groups: np.ndarray, k: int) -> np.ndarray:
    """Fold id per item: whole groups, largest first, each to the currently smallest fold."""
    uniq, inv, counts = np.unique(groups, return_inverse=True, return_counts=True)
    fold_of_group = np.zeros(len(uniq), np.int64)
    sizes = np.zeros(k, np.int64)
    for g in np.lexsort((uniq, -counts)):  # deterministic: by size, then name
        f = int(np.argmin(sizes))
        fold_of_group[g] = f
        sizes[f] += counts[g]
    return fold_of_group[inv]


def _cv(fold_id: np.ndarray, k: int) -> list[Fold]:
    idx = np.arange(len(fold_id))
    empty = np.zeros(0, np.int64)
    return [Fold(idx[fold_id != f], empty, idx[fold_id == f]) for f in range(k)]


def excerpt_protocol(data: PercePiano, k: int = 4) -> Protocol:
    return Protocol("excerpt", _cv(_group_kfold(data.take_group, k), k), pooled=True)


def player_protocol(data: PercePiano, k: int = 4) -> Protocol:
    players = np.where(data.is_score, "Score", data.players)
    return Protocol("player", _cv(_group_kfold(players, k), k), pooled=True)


def piece_protocol(data: PercePiano) -> Protocol:
    pieces, fid = np.unique(data.pieces, return_inverse=True)
    return Protocol("piece", _cv(fid, len(pieces)), pooled=True)


def shared_music(data: PercePiano, proto: Protocol) -> dict:
    """How many tested segments share music (a take or a repeated passage: one
    ``take_group``) with a segment their model trained on."""
    g = data.take_group
    leaked = set()
    for f in proto.folds:
        train = set(g[f.train].tolist())
        leaked |= {int(i) for i in f.test if g[i] in train}
    tested = set(np.concatenate([f.test for f in proto.folds]).tolist())
    return {"test_segments": len(tested), "sharing_music_with_training": len(leaked)}


def performer_fold_ids(data: PercePiano) -> np.ndarray:
    """The dataset code's performer fold id of each segment: Score 0, Score2 -1,
    Schubert the player number, Beethoven the index of the player in
    :data:`BEETHOVEN_PLAYERS`. (The data README calls that index 1-based but also
    says the test set, fold ids {1, 2}, holds Beethoven players 2 and 3; only the
    0-based index gives that test set, so it is used here.)"""
    ids = []
    for s in data.segments:
        if s.player == "Score":
            ids.append(0)
        elif s.player == "Score2":
            ids.append(-1)
        elif s.composer == "Schubert":
            ids.append(int(s.player))
        else:
            ids.append(BEETHOVEN_PLAYERS.index(int(s.player)))
    return np.array(ids)


def paper_performer_protocol(data: PercePiano) -> Protocol:
    fid = performer_fold_ids(data)
    idx = np.arange(len(data))
    test = idx[np.isin(fid, [1, 2])]
    folds = []
    for f in range(4):
        val = idx[np.isin(fid, [2 * f + 3, 2 * f + 4])]
        train = idx[~np.isin(fid, [1, 2, 2 * f + 3, 2 * f + 4])]
        folds.append(Fold(train, val, test))
    return Protocol("paper-performer", folds, pooled=False)


def paper_piece_assignment(names: list[str], excerpts: list[str], *, seed: int = 42,
                           test_share: float = 0.15, k: int = 4) -> dict[str, int]:
    """Excerpt -> fold (-1 = test), the procedure of the dataset's code over sorted
    names: shuffle the labelled segments with Python's ``random`` seeded with ``seed``
    (a private ``random.Random(seed)``, the same order as ``random.seed(seed)``), draw whole
    excerpt groups of more than one segment into the test set until it holds at
    least ``test_share`` of the segments, deal the rest round-robin to ``k`` folds.
    (The original membership depended on the authors' file listing order.)"""
    order = sorted(range(len(names)), key=lambda i: names[i])
    random.Random(seed).shuffle(order)
    size: dict[str, int] = {}
    for e in excerpts:
        size[e] = size.get(e, 0) + 1
    seen: list[str] = []
    for i in order:
        if excerpts[i] not in seen:
            seen.append(excerpts[i])
    assign: dict[str, int] = {}
    n_test = 0
    for e in seen:
        if n_test >= test_share * len(names):
            break
        if size[e] > 1:
            assign[e] = -1
            n_test += size[e]
    rest = [e for e in seen if e not in assign]
    for j, e in enumerate(rest):
        assign[e] = j % k
    return assign


def paper_piece_protocol(data: PercePiano) -> Protocol:
    exc = list(data.excerpts)
    assign = paper_piece_assignment(list(data.names), exc)
    fid = np.array([assign[e] for e in exc])
    idx = np.arange(len(data))
    test = idx[fid == -1]
    folds = [Fold(idx[(fid != -1) & (fid != f)], idx[fid == f], test) for f in range(4)]
    return Protocol("paper-piece", folds, pooled=False)


def get_protocol(name: str, data: PercePiano) -> Protocol:
    makers = {"excerpt": excerpt_protocol, "player": player_protocol, "piece": piece_protocol,
              "paper-performer": paper_performer_protocol, "paper-piece": paper_piece_protocol}
    if name not in makers:
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return makers[name](data)
