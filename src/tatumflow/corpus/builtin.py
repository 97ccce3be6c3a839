"""Built-in corpora exported once from music21's bundled scores to MIDI.

``chorales``: Bach's chorales (four voices merged onto one piano).
``folk``: the Essen folk-song collection (monophonic melodies, for melody models).

Scores are rendered deadpan: the score's metronome marks (120 qpm where none),
a fixed velocity per voice (the top voice a little louder). Export is
parallel, resumable and atomic per file; a marker file records completion.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import CorpusError
from ..performance import Performance
from ..utils import cache_dir, write_json_atomic

BUILTIN_CORPORA = {
    "chorales": "J. S. Bach chorales from the music21 corpus (about 400 pieces)",
    "folk": "Essen folk-song melodies from the music21 corpus (about 8,500 tunes)",
}
MARKER = ".complete.json"
EXPORT_VERSION = 1
DEFAULT_QPM = 120.0


def _music21_root() -> Path:
    try:
        import music21
    except ImportError:  # pragma: no cover - music21 is a dependency
        raise CorpusError("music21 is required for the built-in corpora: pip install music21") from None
    return Path(music21.__file__).parent / "corpus"


def score_to_performance(score, *, top_velocity: int = 88, other_velocity: int = 72,
                         source: str = "") -> Performance:
    """Render a music21 score deadpan: offsets through its metronome marks, ties merged."""
    bounds = score.metronomeMarkBoundaries()
    b_start = np.array([float(b[0]) for b in bounds] or [0.0])
    b_qpm = np.array([float(b[2].getQuarterBPM() or DEFAULT_QPM) for b in bounds] or [DEFAULT_QPM])
    # Seconds at each boundary start: piecewise-linear map from quarter lengths.
    b_sec = np.concatenate(([0.0], np.cumsum(np.diff(b_start) * 60.0 / b_qpm[:-1])))

    def to_sec(ql: np.ndarray) -> np.ndarray:
        k = np.clip(np.searchsorted(b_start, ql, side="right") - 1, 0, len(b_start) - 1)
        return b_sec[k] + (ql - b_start[k]) * 60.0 / b_qpm[k]

    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    on, off, pitch, vel = [], [], [], []
    for i, part in enumerate(parts):
        v = top_velocity if i == 0 else other_velocity
        for el in part.stripTies().flatten().notes:
            ql = float(el.duration.quarterLength)
            if ql <= 0:
                continue  # grace notes have no notated duration
            start = float(el.offset)  # offset within the flattened part
            for p in el.pitches:
                on.append(start)
                off.append(start + ql)
                pitch.append(int(p.midi))
                vel.append(v)
    on_s, off_s = to_sec(np.array(on, float)), to_sec(np.array(off, float))
    return Performance.from_arrays(on_s, off_s, pitch, vel, metadata={"source": source})


def _export_chorale(args) -> tuple[str, str]:
    path, out = args
    from music21 import converter

    from ..midi.io import write_midi

    try:
        score = converter.parse(path)
        perf = score_to_performance(score, source=str(path))
        if len(perf) == 0:
            return str(path), "no notes"
        write_midi(perf, out)
        return str(path), ""
    except Exception as exc:  # a bad score is reported, the export carries on
        return str(path), f"{type(exc).__name__}: {exc}"


def _export_folk_file(args) -> tuple[str, str]:
    path, out_dir = args
    from music21 import converter

    from ..midi.io import write_midi

    stem = Path(path).stem
    try:
        opus = converter.parse(path)
        scores = list(opus.scores) if hasattr(opus, "scores") else [opus]
        for k, score in enumerate(scores):
            out = Path(out_dir) / f"{stem}_{k:04d}.mid"
            if out.exists():
                continue
            perf = score_to_performance(score, top_velocity=80, source=f"{path}#{k}")
            if len(perf):
                write_midi(perf, out)
        return str(path), ""
    except Exception as exc:
        return str(path), f"{type(exc).__name__}: {exc}"


def corpus_dir(name: str, root: Optional[Path] = None) -> Path:
    return Path(root or cache_dir() / "corpus") / name


def export_corpus(name: str, *, out: Optional["str | os.PathLike"] = None, workers: Optional[int] = None,
                  progress: bool = True, limit: Optional[int] = None) -> Path:
    """Export a built-in corpus to MIDI files once and return its folder.

    A completed export (marker file present) is reused; an interrupted one is
    resumed, skipping files already written.
    """
    if name not in BUILTIN_CORPORA:
        raise CorpusError(f"unknown built-in corpus {name!r}; choose from {sorted(BUILTIN_CORPORA)}")
    folder = Path(out) if out else corpus_dir(name)
    marker = folder / MARKER
    if marker.exists() and limit is None:
        try:
            info = json.loads(marker.read_text())
            if info.get("version") == EXPORT_VERSION:
                return folder
        except (OSError, json.JSONDecodeError):
            pass
    folder.mkdir(parents=True, exist_ok=True)
    root = _music21_root()
    if name == "chorales":
        from music21 import corpus

        paths = sorted(p for p in corpus.getComposer("bach") if p.suffix in (".mxl", ".xml", ".krn"))
        jobs = [(str(p), str(folder / (p.stem + ".mid"))) for p in paths]
        jobs = [j for j in jobs if not Path(j[1]).exists()]
        fn, unit = _export_chorale, "piece"
    else:
        paths = sorted((root / "essenFolksong").glob("*.abc"))
        jobs = [(str(p), str(folder)) for p in paths]
        fn, unit = _export_folk_file, "file"
    if limit is not None:
        jobs = jobs[:limit]
    failures = {}
    if jobs:
        workers = workers or min(len(jobs), os.cpu_count() or 1)
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc=f"export {name}", unit=unit, disable=not progress)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for src, err in pool.map(fn, jobs, chunksize=4 if name == "chorales" else 1):
                if err:
                    failures[src] = err
                bar.update(1)
        bar.close()
    n_files = sum(1 for _ in folder.glob("*.mid"))
    if n_files == 0:
        raise CorpusError(f"exporting {name!r} produced no MIDI files: {list(failures.items())[:3]}")
    if limit is None:
        write_json_atomic(marker, {"version": EXPORT_VERSION, "name": name, "files": n_files,
                                   "failures": failures})
    return folder
