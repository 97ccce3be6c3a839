"""Statistics of a token store (what `tatumflow inspect` prints)."""

from __future__ import annotations

import numpy as np

from .store import TokenStore


def store_statistics(store: TokenStore) -> dict:
    """Files, failures, hours, notes, tokens, rates and vocabulary usage of a store."""
    tok = store.tokenizer()
    vocab = tok.vocab
    counts = np.zeros(vocab.size, dtype=np.int64)
    for i in range(store.manifest["n_shards"]):
        sh = store.shard(i)
        if sh.size:
            counts += np.bincount(sh, minlength=vocab.size)[: vocab.size]
    t = store.manifest["totals"]
    seconds, notes, tokens = t["seconds"], t["notes"], t["tokens"]
    usage = {}
    for b in vocab.blocks:
        c = counts[b.start : b.stop]
        usage[b.name] = {"ids": b.size, "used": int((c > 0).sum()), "tokens": int(c.sum()),
                         "share": round(float(c.sum()) / max(tokens, 1), 4)}
    reasons: dict[str, int] = {}
    for f in store.failures:
        r = f["reason"].split(" (")[0]
        reasons[r] = reasons.get(r, 0) + 1
    return {
        "store": str(store.path),
        "source": store.manifest["source"],
        "tokenizer_hash": store.manifest["tokenizer_hash"],
        "vocab_size": vocab.size,
        "files": t["files"],
        "failed": t["failed"],
        "failure_reasons": reasons,
        "splits": t["splits"],
        "hours": round(seconds / 3600.0, 3),
        "notes": notes,
        "tokens": tokens,
        "tokens_per_note": round(tokens / max(notes, 1), 4),
        "tokens_per_second": round(tokens / max(seconds, 1e-9), 3),
        "vocab_used": int((counts > 0).sum()),
        "vocab_usage": usage,
    }


def format_statistics(st: dict, failures: list) -> str:
    """What `tatumflow inspect` prints: the statistics, the vocabulary use, the first failures."""
    from ..utils import format_table

    keys = ["source", "files", "failed", "splits", "hours", "notes", "tokens", "tokens_per_note",
            "tokens_per_second", "vocab_size", "vocab_used"]
    usage = [(b, u["used"], u["ids"], f"{u['tokens']:,}", f"{100 * u['share']:.1f}%")
             for b, u in st["vocab_usage"].items()]
    return "\n".join([format_table([(k, st[k]) for k in keys], ("statistic", "value")), "",
                      format_table(usage, ("block", "used", "ids", "tokens", "share"))]
                     + [f"FAILED {f['key']}: {f['reason']}" for f in failures[:20]])
