"""Fill many cells of the assessor table at once, on a machine with many cores (and a GPU).

    python benchmarks/assessor_cells.py --results DIR [--workers N] [--chunk K] [--deadline S]
                                        [--data DIR] [--bootstrap 300] CELL [CELL ...]

A CELL is ``PROTOCOL:MODEL`` or ``PROTOCOL:MODEL+score`` (with the score-relative
features), the cells of ``benchmarks/assessor_table.py``. Each cell's folds not yet
kept are cut into chunks of ``K``, every chunk one ``tatumflow assess-cv --folds``
process; ``N`` workers, each pinned to its own core, take the chunks in the order the
cells are given until ``S`` seconds have passed (a chunk still running then is
stopped; its finished folds stay kept). Then every cell whose folds are all kept is
scored (side by side) by the same command without ``--folds`` and written where
``assessor_table.py --results DIR`` reads it (``DIR/PROTOCOL__MODEL[+score].json``);
the others keep their folds in ``DIR/....json.folds/`` and the same command resumes
them. Logs: ``DIR/logs/``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tatumflow.assessment.data import load_percepiano
from tatumflow.assessment.protocols import get_protocol


def result_file(results: Path, cell: str) -> Path:
    proto, _, model = cell.partition(":")
    return results / f"{proto}__{model}.json"


def fold_list(ks: list[int]) -> str:
    """0-based folds as ``--folds`` takes them: [0, 1, 2, 5] -> ``1-3,6``."""
    runs: list[list[int]] = []
    for k in ks:
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return ",".join(f"{a + 1}-{b + 1}" if b > a else f"{a + 1}" for a, b in runs)


def command(cell: str, out: Path, data: str | None, bootstrap: int, folds: str | None = None) -> list[str]:
    proto, _, model = cell.partition(":")
    score = model.endswith("+score")
    cmd = [sys.executable, "-m", "tatumflow.cli.main", "assess-cv", "--protocol", proto,
           "--model", model.removesuffix("+score"), "--bootstrap", str(bootstrap), "--out", str(out)]
    if score:
        cmd.append("--score")
    if data:
        cmd += ["--data", data]
    if folds:
        cmd += ["--folds", folds]
    return cmd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cells", nargs="+", metavar="CELL")
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--data", help="the PercePiano folder (default: the shared data)")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--chunk", type=int, default=4, help="folds per process")
    ap.add_argument("--deadline", type=float, default=float("inf"), help="seconds for the training processes")
    ap.add_argument("--bootstrap", type=int, default=300)
    args = ap.parse_args()
    for c in args.cells:
        if ":" not in c:
            ap.error(f"cell {c!r}: give PROTOCOL:MODEL[+score]")

    data = load_percepiano(args.data)
    n_folds = {c: len(get_protocol(c.partition(":")[0], data).folds) for c in args.cells}
    logs = args.results / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def kept(cell: str, k: int) -> bool:
        return Path(f"{result_file(args.results, cell)}.folds/fold{k}.npz").is_file()

    todo = {c: [k for k in range(n_folds[c]) if not kept(c, k)] for c in args.cells
            if not result_file(args.results, c).is_file()}  # a kept fold is not trained again
    tasks = [(c, ks[j : j + args.chunk]) for c, ks in todo.items() for j in range(0, len(ks), args.chunk)]
    t0 = time.monotonic()
    lock = threading.Lock()
    cores = sorted(os.sched_getaffinity(0))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

    def worker(k: int) -> None:
        while True:
            with lock:
                if not tasks:
                    return
                cell, ks = tasks.pop(0)
            left = args.deadline - (time.monotonic() - t0)
            if left <= 10:
                return
            out = result_file(args.results, cell)
            spec = fold_list(ks)
            log = logs / f"{out.stem}__{spec}.log"
            cmd = ["taskset", "-c", str(cores[k % len(cores)])] + command(cell, out, args.data, args.bootstrap, spec)
            with open(log, "w") as fh:
                try:
                    rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                        timeout=None if left == float("inf") else left).returncode
                except subprocess.TimeoutExpired:
                    rc = "stopped at the deadline"
            print(f"[{time.monotonic() - t0:6.0f} s] {cell} folds {spec}: {rc}", flush=True)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def score(cell: str) -> str:
        out = result_file(args.results, cell)
        n_kept = sum(kept(cell, k) for k in range(n_folds[cell]))
        if out.is_file():
            return f"{cell}: scored in {out}"
        if n_kept < n_folds[cell]:
            return f"{cell}: {n_kept} of {n_folds[cell]} folds kept in {out}.folds (run again to resume)"
        with open(logs / f"{out.stem}.log", "w") as fh:
            rc = subprocess.run(command(cell, out, args.data, args.bootstrap), stdout=fh, stderr=subprocess.STDOUT,
                                env=env).returncode
        return f"{cell}: scored in {out}" if rc == 0 else f"{cell}: scoring failed ({rc}), see {fh.name}"

    with ThreadPoolExecutor(args.workers) as pool:  # the complete cells scored side by side
        for line in pool.map(score, args.cells):
            print(line, flush=True)


if __name__ == "__main__":
    main()
