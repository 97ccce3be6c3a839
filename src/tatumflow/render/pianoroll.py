"""Piano-roll images of a Performance (matplotlib, no global state touched)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..performance import Performance
from ..utils import atomic_path


def plot_pianoroll(performance: Performance, path: "str | os.PathLike", *, start: float = 0.0,
                   end: Optional[float] = None, title: Optional[str] = None,
                   width: float = 12.0, height: float = 5.0, dpi: int = 120) -> Path:
    """Write a PNG piano roll: notes as bars coloured by velocity, pedal as a band.

    ``start``/``end`` (seconds) choose the span shown; by default the whole piece.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib import colormaps

    end = performance.end if end is None else end
    if end <= start:
        end = start + 1.0
    perf = performance.slice(start, end, shift=False)
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    n = perf.notes
    if len(n):
        x0, x1, p = n["onset"], n["offset"], n["pitch"].astype(float)
        verts = np.stack([
            np.stack([x0, p - 0.4], 1), np.stack([x1, p - 0.4], 1),
            np.stack([x1, p + 0.4], 1), np.stack([x0, p + 0.4], 1),
        ], axis=1)
        cmap = colormaps["viridis"]
        coll = PolyCollection(verts, facecolors=cmap(n["velocity"] / 127.0), edgecolors="none")
        ax.add_collection(coll)
        lo, hi = int(p.min()), int(p.max())
    else:
        lo, hi = 48, 72
    base = lo - 4
    for down, up in perf.pedal_intervals():
        ax.axvspan(max(down, start), min(up, end), ymin=0, ymax=0.03, color="tab:orange", alpha=0.8, lw=0)
    ax.set_xlim(start, end)
    ax.set_ylim(base, hi + 2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    c_ticks = [m for m in range(0, 128, 12) if base <= m <= hi + 2]
    ax.set_yticks(c_ticks, [f"C{m // 12 - 1}" for m in c_ticks])
    ax.grid(axis="y", alpha=0.2)
    src = performance.metadata.get("source", "")
    ax.set_title(title or (Path(src).name if src else f"{len(performance)} notes"), fontsize=10)
    if len(n):
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        fig.colorbar(ScalarMappable(Normalize(0, 127), cmap), ax=ax, label="velocity", pad=0.01)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
