"""The token store: memory-mapped token shards plus a JSON manifest.

Layout of a store folder::

    manifest.json            tokenizer config + hash, source, per-file records, failures, totals
    tokenizer.json           the tokenizer config alone
    shards/00000.npy         tokens of a group of files, concatenated (uint16/uint32)
    shards/00000.json        that shard's per-file records, failures, and the .npy's size and
                             sha256 (its commit marker)

``prepare_store`` validates and tokenizes files in parallel processes, one
shard per work unit. A shard is written atomically (tokens first, then its
JSON record), so an interrupted run leaves only complete shards behind, and a
re-run skips shards whose files and tokenizer are unchanged and whose .npy
still has the recorded size and checksum (a damaged shard is rebuilt). The
workers end with the parent process, however it ends.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from ..corpus.sources import SourceFile, matches, resolve_source
from ..errors import StoreError
from ..midi.validate import ValidationConfig, validate_file
from ..tokenizer import PerformanceTokenizer, TokenizerConfig
from ..utils import atomic_path, write_json_atomic

STORE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES_PER_SHARD = 64


def _shard_key(files: list[SourceFile], tok_hash: str, vcfg: ValidationConfig) -> str:
    h = hashlib.sha256()
    h.update(tok_hash.encode())
    h.update(repr(vcfg).encode())
    for f in files:
        st = f.path.stat() if f.path.exists() else None
        h.update(f"{f.key}\0{f.split}\0{st.st_size if st else -1}\0{st.st_mtime_ns if st else -1}\n".encode())
    return h.hexdigest()[:20]


def _build_shard(args) -> dict:
    """Worker: validate + tokenize one shard's files and write the shard atomically."""
    index, files, tok_cfg, vcfg, shard_dir, key = args
    tok = PerformanceTokenizer(TokenizerConfig.from_dict(tok_cfg))
    parts, records, failures = [], [], []
    offset = 0
    for f in files:
        res, perf = validate_file(f.path, vcfg)
        if not res.ok:
            failures.append({"key": f.key, "path": str(f.path), "split": f.split, "reason": res.reason})
            continue
        try:
            ids = tok.encode(perf)
        except Exception as exc:  # never let one file stop the shard
            failures.append({"key": f.key, "path": str(f.path), "split": f.split,
                             "reason": f"tokenizer failed: {type(exc).__name__}: {exc}"})
            continue
        parts.append(ids.astype(tok.id_dtype))
        records.append({
            "key": f.key, "path": str(f.path), "split": f.split, "meta": f.meta,
            "offset": offset, "length": int(ids.size), "notes": len(perf),
            "seconds": round(perf.end, 4), "pedal_events": int(perf.pedals.size),
        })
        offset += int(ids.size)
    tokens = np.concatenate(parts) if parts else np.empty(0, tok.id_dtype)
    stem = f"{index:05d}"
    buf = io.BytesIO()
    np.save(buf, tokens)
    data = buf.getvalue()
    with atomic_path(Path(shard_dir) / f"{stem}.npy") as tmp:
        Path(tmp).write_bytes(data)
    write_json_atomic(Path(shard_dir) / f"{stem}.json", {
        "index": index, "key": key, "files": records, "failures": failures, "tokens": int(tokens.size),
        "npy_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
    }, indent=None)
    return {"index": index, "n_files": len(files)}


def _read_shard_record(shard_dir: Path, index: int) -> Optional[dict]:
    """A shard's record if the shard is complete and undamaged: its .npy has the
    recorded size and sha256. ``None`` means: build it (again)."""
    p, npy = shard_dir / f"{index:05d}.json", shard_dir / f"{index:05d}.npy"
    try:
        rec = json.loads(p.read_text())
        if not isinstance(rec, dict) or npy.stat().st_size != rec.get("npy_bytes"):
            return None
        h = hashlib.sha256()
        with open(npy, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return rec if h.hexdigest() == rec.get("sha256") else None
    except (OSError, ValueError):
        return None


def _die_with_parent() -> None:
    """Pool initializer: on Linux, ask the kernel to end this worker when its parent
    dies (even by SIGKILL), so an interrupted ``prepare`` leaves no orphans."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass
        if os.getppid() == 1:  # the parent died before the call: nothing left to work for
            os._exit(1)


@dataclass
class PrepareResult:
    store: Path
    files: int
    failed: int
    shards_built: int
    shards_reused: int
    seconds: float
    failures: list = field(default_factory=list)


def prepare_store(src: "str | os.PathLike", out: "str | os.PathLike", *,
                  tokenizer_config: Optional[TokenizerConfig] = None,
                  validation: ValidationConfig = ValidationConfig(),
                  workers: Optional[int] = None, files_per_shard: int = FILES_PER_SHARD,
                  where: Optional[dict] = None, progress: bool = True) -> PrepareResult:
    """Validate and tokenize every file of ``src`` into a token store at ``out``.

    ``where`` keeps only files whose split or CSV columns match (e.g. one pianist)."""
    t0 = time.perf_counter()
    tok_cfg = tokenizer_config or TokenizerConfig()
    source_desc, files = resolve_source(src, progress=progress)
    if where:
        files = [f for f in files if matches(where, f.split, f.meta)]
        if not files:
            raise StoreError(f"{src}: no file matches {where}")
        source_desc += " where " + ", ".join(f"{k}={v}" for k, v in where.items())
    out = Path(out)
    shard_dir = out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
            if old.get("tokenizer_hash") != tok_cfg.hash:
                raise StoreError(
                    f"{out}: existing store was built with another tokenizer config "
                    f"(hash {old.get('tokenizer_hash')}, now {tok_cfg.hash}); use a new --out folder"
                )
        except json.JSONDecodeError:
            pass  # a broken manifest is rebuilt below
    groups = [files[i : i + files_per_shard] for i in range(0, len(files), files_per_shard)]
    jobs, reused = [], 0
    for i, group in enumerate(groups):
        key = _shard_key(group, tok_cfg.hash, validation)
        rec = _read_shard_record(shard_dir, i)
        if rec is not None and rec.get("key") == key:
            reused += 1
            continue
        jobs.append((i, group, tok_cfg.to_dict(), validation, str(shard_dir), key))
    # Shards beyond the current file list belong to an older, larger source.
    # Temporary files of an interrupted run are removed too.
    for stale in shard_dir.iterdir():
        if stale.name.startswith(".") or (stale.stem.isdigit() and int(stale.stem) >= len(groups)):
            stale.unlink()
    if jobs:
        from tqdm import tqdm

        n_files = sum(len(j[1]) for j in jobs)
        bar = tqdm(total=n_files, desc="prepare", unit="file", disable=not progress)
        workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
        if workers == 1:
            for job in jobs:
                bar.update(_build_shard(job)["n_files"])
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent) as pool:
                futures = [pool.submit(_build_shard, job) for job in jobs]
                for fut in as_completed(futures):
                    bar.update(fut.result()["n_files"])
        bar.close()
    manifest = _assemble_manifest(out, len(groups), tok_cfg, source_desc, validation)
    return PrepareResult(out, len(manifest["files"]), len(manifest["failures"]),
                         len(jobs), reused, time.perf_counter() - t0, manifest["failures"])


def _assemble_manifest(out: Path, n_shards: int, tok_cfg: TokenizerConfig, source: str,
                       validation: ValidationConfig) -> dict:
    shard_dir = out / "shards"
    files, failures, shards = [], [], []
    for i in range(n_shards):
        rec = _read_shard_record(shard_dir, i)
        if rec is None:
            raise StoreError(f"{out}: shard {i:05d} is missing or damaged after prepare")
        for r in rec["files"]:
            files.append({**r, "shard": i})
        failures.extend(rec["failures"])
        shards.append({"index": i, "npy_bytes": rec["npy_bytes"], "sha256": rec["sha256"]})
    totals = {
        "files": len(files),
        "failed": len(failures),
        "tokens": int(sum(f["length"] for f in files)),
        "notes": int(sum(f["notes"] for f in files)),
        "seconds": float(sum(f["seconds"] for f in files)),
        "splits": {s: sum(1 for f in files if f["split"] == s) for s in ("train", "val", "test")},
    }
    manifest = {
        "format_version": STORE_FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": source,
        "tokenizer": tok_cfg.to_dict(),
        "tokenizer_hash": tok_cfg.hash,
        "validation": {k: (list(v) if isinstance(v, tuple) else v) for k, v in validation.__dict__.items()},
        "n_shards": n_shards,
        "shards": shards,
        "totals": totals,
        "files": files,
        "failures": failures,
    }
    tok_cfg.save(out / "tokenizer.json")
    write_json_atomic(out / MANIFEST, manifest, indent=1)
    return manifest


class TokenStore:
    """Read access to a prepared store; token arrays are memory-mapped, not loaded."""

    def __init__(self, path: "str | os.PathLike"):
        self.path = Path(path)
        mp = self.path / MANIFEST
        if not mp.exists():
            raise StoreError(f"{self.path}: not a token store (no {MANIFEST}); run `tatumflow prepare`")
        try:
            self.manifest = json.loads(mp.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{mp}: manifest is not valid JSON ({exc})") from None
        if self.manifest.get("format_version") != STORE_FORMAT_VERSION:
            raise StoreError(f"{self.path}: store format {self.manifest.get('format_version')} "
                             f"is not supported (expected {STORE_FORMAT_VERSION})")
        self.tokenizer_config = TokenizerConfig.from_dict(self.manifest["tokenizer"])
        self.files: list[dict] = self.manifest["files"]
        self.failures: list[dict] = self.manifest["failures"]
        self._shards: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r}, files={len(self)}, tokens={self.manifest['totals']['tokens']})"

    def tokenizer(self) -> PerformanceTokenizer:
        return PerformanceTokenizer(self.tokenizer_config)

    def shard(self, index: int) -> np.ndarray:
        if index not in self._shards:
            p = self.path / "shards" / f"{index:05d}.npy"
            if not p.exists():
                raise StoreError(f"{p}: shard file missing; re-run `tatumflow prepare`")
            recorded = self.manifest.get("shards") or []
            size = recorded[index]["npy_bytes"] if index < len(recorded) else None
            if size is not None and p.stat().st_size != size:
                raise StoreError(f"{p}: shard damaged ({p.stat().st_size} bytes, the manifest says "
                                 f"{size}); re-run `tatumflow prepare` to rebuild it")
            try:
                self._shards[index] = np.load(p, mmap_mode="r")
            except (ValueError, OSError) as exc:
                raise StoreError(f"{p}: shard damaged ({exc}); re-run `tatumflow prepare` to rebuild it") from None
        return self._shards[index]

    def tokens(self, i: int) -> np.ndarray:
        """Token ids of file ``i`` (a read-only memory-mapped view)."""
        f = self.files[i]
        return self.shard(f["shard"])[f["offset"] : f["offset"] + f["length"]]

    def indices(self, split: Optional[str] = None) -> np.ndarray:
        if split is None:
            return np.arange(len(self.files))
        return np.array([i for i, f in enumerate(self.files) if f["split"] == split], dtype=np.int64)

    def iter_tokens(self, indices: Optional[Iterable[int]] = None):
        for i in range(len(self.files)) if indices is None else indices:
            yield self.tokens(int(i))

    def lengths(self) -> np.ndarray:
        return np.array([f["length"] for f in self.files], dtype=np.int64)
