"""Run a model under a protocol and score it: ``tatumflow assess-cv``."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .data import DIMENSIONS, RAW_RATINGS, PercePiano, PercePianoError, load_percepiano, rater_ceiling
from .metrics import bootstrap_ci, scores
from .protocols import HOLDS_OUT_MUSIC, get_protocol, shared_music

FEATURE_VERSION = 1


def feature_matrix(data: PercePiano, *, progress: bool = False, cache: bool = True, score: bool = False
                   ) -> tuple[np.ndarray, list[str]]:
    """Hand-crafted features of every segment (with ``score``: followed by the
    score-relative ones, :data:`~tatumflow.align.SCORE_FEATURE_NAMES`), cached (by file
    names, sizes and mtimes and the feature version) in the TatumFlow cache folder."""
    from ..utils import cache_dir
    from .features import performance_features

    if score:
        X, names = feature_matrix(data, progress=progress, cache=cache)
        S, snames = score_feature_matrix(data, progress=progress, cache=cache)
        return np.concatenate([X, S], axis=1), names + snames
    h = hashlib.sha256(f"v{FEATURE_VERSION}".encode())
    for p in data.paths:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    f = cache_dir() / "assessment" / f"features_{h.hexdigest()[:16]}.npz"
    if cache and f.is_file():
        z = np.load(f, allow_pickle=False)
        return z["X"], [str(n) for n in z["names"]]
    X, names = performance_features(data.performances(progress=progress))
    if cache:
        from ..utils import atomic_path

        f.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(f) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, X=X, names=np.array(names))
    return X, names


@dataclass
class CVResult:
    model: str
    protocol: str
    scores: dict            # pooled (or fold-averaged) headline scores and per-dimension table
    folds: list[dict]       # per-fold scores
    ci95: dict              # cluster-bootstrap intervals (pooled protocols) or fold range
    predictions: np.ndarray  # (N, 19) out-of-fold predictions (pooled) or fold-mean test predictions
    seconds: float          # the time to train and score every fold (kept folds: their time when trained)
    analysis: dict | None = None  # feature importances and the hardest dimensions, excerpts, performers

    def as_dict(self) -> dict:
        """JSON-ready (NaN, e.g. within-excerpt r on a test set without repeated passages, becomes null)."""
        return _no_nan({"model": self.model, "protocol": self.protocol, "scores": self.scores, "folds": self.folds,
                        "ci95": self.ci95, "seconds": self.seconds, "dimensions": list(DIMENSIONS),
                        "analysis": self.analysis, "predictions": self.predictions.tolist()})

    @classmethod
    def from_dict(cls, d: dict) -> "CVResult":
        """Back from :meth:`as_dict` (e.g. a saved ``assess-cv --out`` file)."""
        nan = float("nan")

        def back(x):
            if x is None:
                return nan
            if isinstance(x, dict):
                return {k: back(v) for k, v in x.items()}
            if isinstance(x, list):
                return [back(v) for v in x]
            return x

        return cls(d["model"], d["protocol"], back(d["scores"]), back(d["folds"]), back(d["ci95"]),
                   np.array(back(d["predictions"]), dtype=np.float64), d["seconds"], back(d.get("analysis")))


def error_analysis(data: PercePiano, pred: np.ndarray, mask: np.ndarray, importances: np.ndarray | None,
                   feature_names: list[str], top: int = 5) -> dict:
    """Where the model is weakest: dimensions by r, excerpts and performers by mean
    absolute error (on the 1..7 scale), and the most important features."""
    y, p = data.ratings[mask], pred[mask]
    r = scores(y, p, data.excerpts[mask])["per_dim"]["r"]
    err = 7.0 * np.abs(y - p).mean(1)

    def worst(keys):
        keys = np.asarray(keys)[mask]
        u = np.unique(keys)
        m = np.array([err[keys == k].mean() for k in u])
        o = np.argsort(-m)[:top]
        return [{"name": str(u[i]), "mae": float(m[i]), "segments": int((keys == u[i]).sum())} for i in o]

    out = {"hardest_dimensions": [{"name": DIMENSIONS[i], "r": float(r[i])} for i in np.argsort(r)[:top]],
           "hardest_excerpts": worst(data.excerpts), "hardest_performers": worst(data.players),
           "mae_overall": float(err.mean())}
    if importances is not None:
        o = np.argsort(-importances)[: 3 * top]
        out["top_features"] = [{"name": feature_names[i], "importance": float(importances[i])} for i in o]
    return out


def _no_nan(x):
    if isinstance(x, float):
        return None if x != x else x
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_no_nan(v) for v in x]
    return x


def make_model(name: str, seed: int = 0, *, arrays=None, groups=None, progress: bool = False, run_dir=None,
               score: bool = False):
    """One assessor by name: a classical one (:data:`~.baselines.CLASSICAL`), one that
    rates note by note (:data:`~.baselines.NOTE_MODELS`; ``score``: reading each
    note's deviations from the score) or a neural one (:data:`~.neural.NEURAL`,
    optionally ``name@size`` with a size of :data:`~.neural.SIZES`). The last two
    need the segments' note arrays; ``groups`` keeps linked segments together when
    a network carves its validation part, and ``run_dir`` makes its training
    resumable, :class:`~.neural.NeuralModel`."""
    from .baselines import CLASSICAL, NOTE_MODELS, NoteBoosting, make_classical
    from .neural import NEURAL, SIZES, NeuralModel

    if name in CLASSICAL:
        return make_classical(name, seed)
    if name in NOTE_MODELS or name.partition("@")[0] in NEURAL:
        if arrays is None:
            raise ValueError(f"assessor {name!r} needs the segments' note arrays")
        if name in NOTE_MODELS:
            return NoteBoosting(arrays, seed, score=score)
        return NeuralModel(name, arrays, seed, progress=progress, groups=groups, run_dir=run_dir)
    raise ValueError(f"unknown assessor model {name!r}; available: {', '.join(CLASSICAL + NOTE_MODELS + NEURAL)} "
                     f"(neural ones as name@size, sizes {', '.join(SIZES)}; join names with '+' to average them)")


class Ensemble:
    """The mean prediction of ``name`` (names joined by ``+`` are averaged) over
    ``seeds`` seeds each: a seed ensemble, a blend of models, or both.
    ``run_dir``: the neural members train resumably in its subfolders; ``score``:
    the members that rate note by note read the deviations from the score."""

    def __init__(self, name: str, seed: int = 0, seeds: int = 1, *, arrays=None, groups=None,
                 progress: bool = False, run_dir: "str | Path | None" = None, score: bool = False):
        parts = [(part, seed + k) for part in name.split("+") for k in range(seeds)]
        self.members = [make_model(part, s, arrays=arrays, groups=groups, progress=progress,
                                   run_dir=None if run_dir is None else Path(run_dir) / f"member{j}", score=score)
                        for j, (part, s) in enumerate(parts)]

    @staticmethod
    def _neural(m) -> bool:
        from .neural import NeuralModel

        return isinstance(m, NeuralModel)

    @staticmethod
    def _reads_notes(m) -> bool:
        """Whether ``m`` reads the segments' note arrays by row number (fit/predict take the rows)."""
        from .baselines import NoteBoosting

        return isinstance(m, NoteBoosting) or Ensemble._neural(m)

    def fit(self, X: np.ndarray, Y: np.ndarray, rows: np.ndarray, val: np.ndarray | None = None) -> "Ensemble":
        """Fit every member on ``rows``; neural members stop early on ``val`` (a
        protocol's validation rows) or, without it, on a part of ``rows``."""
        for m in self.members:
            if not self._reads_notes(m):
                m.fit(X[rows], Y[rows])
            elif not self._neural(m):
                m.fit(X[rows], Y[rows], rows)
            elif val is not None and len(val):
                both = np.concatenate([rows, val])
                m.fit(X[both], Y[both], both, val=np.arange(len(both)) >= len(rows))
            else:
                m.fit(X[rows], Y[rows], rows)
        return self

    def predict(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.mean([m.predict(X[rows], rows) if self._reads_notes(m) else m.predict(X[rows])
                        for m in self.members], 0)

    def feature_importances(self) -> np.ndarray | None:
        imps = [m.feature_importances() for m in self.members if hasattr(m, "feature_importances")]
        return np.mean(imps, 0) if imps and all(i is not None for i in imps) else None


def segment_scores(data: PercePiano) -> list[Path]:
    """The score (``score_midi/``) of every segment; an error naming one that has none."""
    from ..align.score import score_for_segment

    scores_ = [score_for_segment(data.root, n) for n in data.names]
    missing = [n for n, p in zip(data.names, scores_) if p is None]
    if missing:
        raise PercePianoError(f"{data.root / 'score_midi'}: no score for {len(missing)} segments, e.g. {missing[0]}")
    return scores_


def score_feature_matrix(data: PercePiano, *, progress: bool = False, cache: bool = True
                         ) -> tuple[np.ndarray, list[str]]:
    """Score-relative features of every segment against its score (``score_midi/``), cached."""
    from tqdm import tqdm

    from ..align.score import SCORE_FEATURE_NAMES, SCORE_FEATURE_VERSION, score_features
    from ..midi import read_midi
    from ..utils import atomic_path, cache_dir

    scores_ = segment_scores(data)
    h = hashlib.sha256(f"score-v{FEATURE_VERSION}-{SCORE_FEATURE_VERSION}-{len(SCORE_FEATURE_NAMES)}".encode())
    for p in list(data.paths) + scores_:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    f = cache_dir() / "assessment" / f"score_features_{h.hexdigest()[:16]}.npz"
    if cache and f.is_file():
        return np.load(f, allow_pickle=False)["X"], list(SCORE_FEATURE_NAMES)
    X = np.stack([score_features(read_midi(p), read_midi(s)) for p, s in
                  tqdm(list(zip(data.paths, scores_)), desc="align to scores", unit="file", disable=not progress)])
    if cache:
        f.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(f) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, X=X)
    return X, list(SCORE_FEATURE_NAMES)


def note_arrays(data: PercePiano, *, score: bool = False, progress: bool = False) -> list:
    """Every segment as network inputs (:class:`~tatumflow.assessment.inputs.NoteArrays`);
    ``score``: each also read against its score (``score_midi/``)."""
    from tqdm import tqdm

    from ..midi import read_midi
    from .inputs import NoteArrays

    perfs = data.performances(progress=progress)
    if not score:
        return [NoteArrays.of(p) for p in perfs]
    scores_ = segment_scores(data)
    return [NoteArrays.of(p, read_midi(s)) for p, s in
            tqdm(list(zip(perfs, scores_)), desc="align to scores", unit="file", disable=not progress)]


class FoldStore:
    """Each finished fold's test predictions, kept in ``folder`` so that a long
    cross-validation (a neural cell can take hours) resumes where it stopped:
    a fold is reused only when the model, seeds, protocol and fold, features and
    ratings are all the same as when it was saved."""

    def __init__(self, folder: "str | Path", key: str):
        self.folder, self.key = Path(folder), key

    def _file(self, k: int) -> Path:
        return self.folder / f"fold{k}.npz"

    def run_dir(self, k: int, test: np.ndarray) -> Path:
        """Where fold ``k``'s neural training checkpoints until the fold is kept (a
        fold killed mid-training resumes there; named by the fold's key, so a
        changed model or data never resumes a foreign run)."""
        return self.folder / f"fold{k}.run-{self._fold_key(test)[:16]}"

    def load(self, k: int, test: np.ndarray) -> dict | None:
        f = self._file(k)
        if not f.is_file():
            return None
        try:
            with np.load(f, allow_pickle=False) as z:
                if str(z["key"]) != self._fold_key(test):
                    return None
                imp = z["importances"]
                return {"pred": z["pred"], "importances": imp if imp.size else None,
                        "fits": json.loads(str(z["fits"])), "seconds": float(z["seconds"])}
        except (OSError, ValueError, KeyError):  # a damaged or foreign file: train the fold again
            return None

    def save(self, k: int, test: np.ndarray, pred: np.ndarray, importances, fits: list, seconds: float) -> None:
        """Keep fold ``k``; its training checkpoints are no longer needed."""
        from ..utils import atomic_path

        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self._file(k)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, key=self._fold_key(test), pred=pred, seconds=seconds, fits=json.dumps(fits),
                     importances=np.zeros(0) if importances is None else importances)
        shutil.rmtree(self.run_dir(k, test), ignore_errors=True)

    def _fold_key(self, test: np.ndarray) -> str:
        return hashlib.sha256(f"{self.key}:{np.asarray(test).tobytes().hex()}".encode()).hexdigest()

    @staticmethod
    def clear(folder: "str | Path") -> None:
        """Remove the folds kept in ``folder`` (once the whole result is written)."""
        folder = Path(folder)
        if folder.is_dir():
            for f in folder.glob("fold*.npz"):
                f.unlink()
            for d in folder.glob("fold*.run-*"):  # checkpoints of folds never finished
                shutil.rmtree(d, ignore_errors=True)
            if not any(folder.iterdir()):
                folder.rmdir()


_CEILINGS: dict = {}


def panel_ceiling(root: Path) -> dict | None:
    """The raters' ceiling (:func:`~tatumflow.assessment.data.rater_ceiling`) of the
    PercePiano folder ``root``, overall and per dimension, computed once per raw
    ratings file; None where the folder has no raw ratings."""
    raw = Path(root) / RAW_RATINGS
    if not raw.is_file():
        return None
    key = (str(raw.resolve()), raw.stat().st_mtime_ns)
    if key not in _CEILINGS:
        try:
            c = rater_ceiling(root)
        except PercePianoError:
            return None
        _CEILINGS[key] = {"mean_r": c["mean_r"], "within_excerpt_r": c["within_excerpt_r"],
                          "per_dim": {"r": c["per_dim"]["r"], "within_excerpt_r": c["per_dim"]["within_excerpt_r"]}}
    return json.loads(json.dumps(_CEILINGS[key]))  # a copy the caller may change


def run_cv(model: str, protocol: str, *, data: PercePiano | None = None, seed: int = 0, seeds: int = 1,
           bootstrap: int = 1000, progress: bool = False, score: bool = False,
           folds_dir: "str | Path | None" = None, log=None, only: "Sequence[int] | None" = None
           ) -> CVResult | None:
    """Train ``model`` on each fold of ``protocol`` and score its test predictions
    (``seeds`` > 1: each fold's model is the mean of that many seeds).
    ``folds_dir``: keep each finished fold there (:class:`FoldStore`) and reuse
    the ones already kept, so an interrupted run resumes. ``log``: called with a
    line as each fold finishes. ``only``: train just these folds (0-based) into
    ``folds_dir`` and return None; a later run without it scores the whole
    protocol from the kept folds (a long cross-validation shared between
    processes or machines)."""
    from .baselines import NOTE_MODELS
    from .neural import NEURAL, recipe_for

    t0 = time.perf_counter()
    data = data or load_percepiano()
    proto = get_protocol(protocol, data)
    if only is not None:
        if folds_dir is None:
            raise ValueError("training only some folds needs a folds folder to keep them in (--out)")
        bad = [i + 1 for i in only if not 0 <= i < len(proto.folds)]
        if bad:
            raise ValueError(f"--folds: protocol {protocol} has folds 1-{len(proto.folds)}, not {bad[0]}")
    X, feat_names = feature_matrix(data, progress=progress, score=score)
    arrays = None
    neural = [recipe_for(n)[1] for n in model.split("+") if n.partition("@")[0] in NEURAL]
    by_note = any(n in NOTE_MODELS for n in model.split("+"))
    if neural or by_note:
        arrays = note_arrays(data, score=any(r.net.get("score_notes") for r in neural) or (by_note and score),
                             progress=progress)

    Y = data.ratings
    exc = data.excerpts
    store = None
    if folds_dir is not None:
        h = hashlib.sha256(repr((model, protocol, seed, seeds, score)).encode())
        h.update(np.ascontiguousarray(X).tobytes())
        h.update(np.ascontiguousarray(Y).tobytes())
        store = FoldStore(folds_dir, h.hexdigest())

    def predicted(i, fold, test):
        """Fold ``i``'s model's ratings of ``test`` (trained now, or kept from an earlier run) and their scores."""
        t = time.perf_counter()
        kept = store.load(i, test) if store else None
        if kept is not None:
            p, imp, fit = kept["pred"], kept["importances"], kept["fits"]
            how = f"kept in {store.folder} ({kept['seconds']:.0f} s when trained)"
            earlier.append(kept["seconds"])
        else:
            m = Ensemble(model, seed, seeds, arrays=arrays, groups=data.take_group, progress=progress,
                         run_dir=store.run_dir(i, test) if store else None, score=score).fit(X, Y, fold.train, fold.val)
            p, imp = m.predict(X, test), m.feature_importances()
            neural = [x for x in m.members if Ensemble._neural(x)]
            fit = [x.fit_info for x in neural]
            before = sum(x.earlier_seconds for x in neural)  # a resumed fold's training in earlier runs
            secs = time.perf_counter() - t + before
            if store:
                store.save(i, test, p, imp, fit, secs)
            how = f"trained in {secs:.0f} s" + (f" ({before:.0f} s of it in earlier runs)" if before else "")
        imps.append(imp)
        fits.extend(fit)
        s = scores(Y[test], p, exc[test])
        fold_scores.append({k: s[k] for k in ("mean_r", "r2", "within_excerpt_r")})
        if log:
            log(f"fold {i + 1}/{len(proto.folds)}: {how}; mean r {s['mean_r']:.3f}")
        return p, s

    imps, fits = [], []
    fold_scores = []
    earlier: list[float] = []  # training seconds of the folds kept from earlier runs
    if only is not None:
        for i in sorted(set(only)):
            predicted(i, proto.folds[i], proto.folds[i].test if proto.pooled else proto.folds[0].test)
        return None
    if proto.pooled:
        pred = np.zeros_like(Y)
        for i, fold in enumerate(proto.folds):
            pred[fold.test] = predicted(i, fold, fold.test)[0]
        sc = scores(Y, pred, exc)
        ci = bootstrap_ci(Y, pred, exc, data.take_group, n=bootstrap, seed=seed) if bootstrap else {}
    else:
        preds = []
        test = proto.folds[0].test
        per = []
        for i, fold in enumerate(proto.folds):
            p, s = predicted(i, fold, test)
            preds.append(p)
            per.append(s)
        pred = np.full_like(Y, np.nan)
        pred[test] = np.mean(preds, 0)
        sc = {k: float(np.mean([s[k] for s in per])) for k in ("mean_r", "r2", "within_excerpt_r")}
        sc["per_dim"] = {k: np.mean([s["per_dim"][k] for s in per], 0).tolist() for k in per[0]["per_dim"]}
        ens = scores(Y[test], pred[test], exc[test])
        sc["fold_ensemble"] = {k: ens[k] for k in ("mean_r", "r2", "within_excerpt_r")}
        ci = {k: [float(min(f[k] for f in fold_scores)), float(max(f[k] for f in fold_scores))]
              for k in ("mean_r", "r2", "within_excerpt_r")}
        ci["kind"] = "range over the 4 fold models"
    imp = np.mean(imps, 0) if imps and all(i is not None for i in imps) else None
    analysis = error_analysis(data, pred, np.isfinite(pred[:, 0]), imp, feat_names)
    if protocol in HOLDS_OUT_MUSIC:
        analysis["shared_music"] = shared_music(data, proto)
    if fits:  # where each neural model stopped, and its validation part's mean r there
        analysis["neural_fits"] = fits
    ceiling = panel_ceiling(data.root)
    if ceiling is not None:
        analysis["rater_ceiling"] = ceiling
    name = (model if seeds == 1 else f"{model} x{seeds} seeds") + (" +score" if score else "")
    # the cross-validation's time: this run's, and the kept folds' when they were trained
    return CVResult(name, protocol, sc, fold_scores, ci, pred, time.perf_counter() - t0 + sum(earlier), analysis)


def format_cv(res: CVResult, protocol: str) -> str:
    """What `tatumflow assess-cv` prints: scores with intervals, the per-dimension table, error analysis."""
    from ..utils import format_table
    from .data import DIMENSIONS

    s, ci = res.scores, res.ci95

    def fmt(k):
        v = s[k]
        if v != v:
            return "n/a"
        lo, hi = ci.get(k, [float("nan")] * 2)
        return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if lo == lo else f"{v:.3f}"

    kind = ci.get("kind", "cluster bootstrap 95%") if ci else "no intervals"
    out = [f"{res.model} under {protocol}: mean r {fmt('mean_r')}, R2 {fmt('r2')}, "
           f"within-excerpt r {fmt('within_excerpt_r')} ({kind}; {res.seconds:.1f}s)"]
    sm = res.analysis.get("shared_music")
    if sm and sm["sharing_music_with_training"]:
        out.append(f"known leak: {sm['sharing_music_with_training']} of {sm['test_segments']} tested segments share "
                   f"a take or a repeated passage with their model's training segments"
                   + (" (the published split groups by excerpt name only)" if protocol.startswith("paper") else ""))
    for i, f in enumerate(res.analysis.get("neural_fits") or []):
        out.append(f"neural model {i + 1}: {f['steps']} steps ({f['stop_reason'].replace('_', ' ')}), trained on "
                   f"{f['train_segments']} segments, validation part {f['val_segments']}"
                   + (f" (mean r {f['val_mean_r']:.3f} at the kept weights)" if f["val_mean_r"] is not None else ""))
    if "fold_ensemble" in s:
        e = s["fold_ensemble"]
        out.append(f"mean of the 4 fold models' predictions: mean r {e['mean_r']:.3f}, R2 {e['r2']:.3f}")
    pd = s["per_dim"]
    num = lambda v: "n/a" if v != v else f"{v:.3f}"  # noqa: E731
    rows = [[d, num(r), num(r2), num(w)]
            for d, r, r2, w in zip(DIMENSIONS, pd["r"], pd["r2"], pd["within_excerpt_r"])]
    head = ["dimension", "r", "R2", "within-excerpt r"]
    ceil = (res.analysis or {}).get("rater_ceiling")
    if ceil:  # where each rating stands against the panel's own agreement
        out.append(f"raters' ceiling (split-half reliability of the panel's mean, {RAW_RATINGS}): mean r "
                   f"{ceil['mean_r']:.3f}, within-excerpt r {ceil['within_excerpt_r']:.3f}")
        for row, c, cw in zip(rows, ceil["per_dim"]["r"], ceil["per_dim"]["within_excerpt_r"]):
            row += [num(c), num(cw)]
        head += ["ceiling r", "ceiling within"]
    out.append(format_table(rows, tuple(head)))
    a = res.analysis
    out.append(f"\nmean absolute error {a['mae_overall']:.2f} (1..7 scale); hardest excerpts: "
               + ", ".join(f"{e['name']} ({e['mae']:.2f})" for e in a["hardest_excerpts"][:3])
               + "; hardest performers: "
               + ", ".join(f"{e['name']} ({e['mae']:.2f})" for e in a["hardest_performers"][:3]))
    if "top_features" in a:
        out.append("most important features: " + ", ".join(f"{f['name']} ({f['importance']:.3f})"
                                                          for f in a["top_features"][:10]))
    return "\n".join(out)
