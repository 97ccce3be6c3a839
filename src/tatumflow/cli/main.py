"""`tatumflow` command line: parses arguments and dispatches to library functions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ..errors import TatumFlowError


def _table(rows: list[Sequence], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _tokenizer_config(args):
    from ..tokenizer import TokenizerConfig

    if getattr(args, "tokenizer", None):
        return TokenizerConfig.load(args.tokenizer)
    return TokenizerConfig(release=getattr(args, "release", "note_off"))


# ---------------------------------------------------------------- commands
def cmd_validate(args) -> int:
    from ..midi.validate import ValidationConfig, validate_paths

    cfg = ValidationConfig(min_seconds=args.min_seconds, max_seconds=args.max_seconds,
                           min_notes=args.min_notes,
                           allowed_programs=None if args.any_program else ValidationConfig().allowed_programs)
    for p in args.paths:
        if not Path(p).exists():
            raise TatumFlowError(f"{p}: no such file or folder")
    results = validate_paths(args.paths, cfg, progress=not args.json and sys.stderr.isatty())
    n_ok = sum(r.ok for r in results)
    if args.json:
        print(json.dumps({"files": len(results), "ok": n_ok, "failed": len(results) - n_ok,
                          "results": [r.to_dict() for r in results]}, indent=1, ensure_ascii=False))
    else:
        rows = [("ok" if r.ok else "FAIL", f"{r.seconds:.1f}", r.notes, r.reason, r.path) for r in results]
        print(_table(rows, ("status", "seconds", "notes", "reason", "path")))
        reasons: dict[str, int] = {}
        for r in results:
            if not r.ok:
                key = r.reason.split(" (")[0].split(":")[0]
                reasons[key] = reasons.get(key, 0) + 1
        print(f"\n{len(results)} files: {n_ok} ok, {len(results) - n_ok} failed"
              + ("" if not reasons else " (" + ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) + ")"))
    return 0 if n_ok == len(results) else 1


def cmd_corpus(args) -> int:
    from ..corpus import BUILTIN_CORPORA, export_corpus

    if args.corpus_cmd == "list":
        print(_table([(k, v) for k, v in BUILTIN_CORPORA.items()], ("name", "description")))
        return 0
    folder = export_corpus(args.name, out=args.out, workers=args.workers)
    print(folder)
    return 0


def cmd_prepare(args) -> int:
    from ..data import prepare_store

    res = prepare_store(args.src, args.out, tokenizer_config=_tokenizer_config(args),
                        workers=args.workers, files_per_shard=args.files_per_shard, where=_where(args.where))
    print(f"{res.store}: {res.files} files stored, {res.failed} failed "
          f"({res.shards_built} shards built, {res.shards_reused} reused) in {res.seconds:.2f}s")
    return 0


def cmd_inspect(args) -> int:
    from ..data import TokenStore, store_statistics

    store = TokenStore(args.store)
    st = store_statistics(store)
    if args.json:
        st["failures"] = store.failures
        print(json.dumps(st, indent=1, ensure_ascii=False))
        return 0
    keys = ["source", "files", "failed", "splits", "hours", "notes", "tokens", "tokens_per_note",
            "tokens_per_second", "vocab_size", "vocab_used"]
    print(_table([(k, st[k]) for k in keys], ("statistic", "value")))
    print()
    print(_table([(b, u["used"], u["ids"], f"{u['tokens']:,}", f"{100 * u['share']:.1f}%")
                  for b, u in st["vocab_usage"].items()], ("block", "used", "ids", "tokens", "share")))
    for f in store.failures[:20]:
        print(f"FAILED {f['key']}: {f['reason']}")
    return 0


def cmd_vocab(args) -> int:
    from ..tokenizer import PerformanceTokenizer

    tok = PerformanceTokenizer(_tokenizer_config(args))
    v = tok.vocab
    if args.json:
        print(json.dumps({"config": tok.config.to_dict(), "hash": tok.config.hash, "size": v.size,
                          "tokens": [v.token_name(i) for i in range(v.size)]}, indent=1))
        return 0
    print(f"vocabulary of {v.size} tokens (config hash {tok.config.hash}, release={tok.config.release})")
    print(_table(v.describe(), ("block", "first id", "last id", "first token", "last token")))
    if args.all:
        print()
        for i in range(v.size):
            print(f"{i}\t{v.token_name(i)}")
    return 0


def cmd_tokenize(args) -> int:
    import numpy as np

    from ..midi import normalize, read_midi
    from ..tokenizer import PerformanceTokenizer

    tok = PerformanceTokenizer(_tokenizer_config(args))
    perf = read_midi(args.file)
    if args.normalize:
        perf = normalize(perf)
    ids = tok.encode(perf)
    if args.out:
        out = Path(args.out)
        if out.suffix == ".npy":
            from ..utils import atomic_path

            with atomic_path(out) as tmp, open(tmp, "wb") as fh:
                np.save(fh, ids)
        else:
            from ..utils import atomic_path

            with atomic_path(out) as tmp:
                Path(tmp).write_text(" ".join(map(str, ids.tolist())) + "\n")
        print(f"{args.file}: {len(perf)} notes -> {ids.size} tokens -> {out}")
    else:
        items = tok.token_names(ids) if args.names else ids.tolist()
        print(" ".join(map(str, items)))
    return 0


def _load_ids(path: Path):
    import numpy as np

    if not path.exists():
        raise TatumFlowError(f"{path}: no such file")
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    text = path.read_text().split()
    try:
        return np.array([int(t) for t in text], dtype=np.int64)
    except ValueError as exc:
        raise TatumFlowError(f"{path}: expected whitespace-separated integer ids ({exc})") from None


def cmd_detokenize(args) -> int:
    from ..midi import write_midi
    from ..tokenizer import PerformanceTokenizer

    tok = PerformanceTokenizer(_tokenizer_config(args))
    perf, rep = tok.decode(_load_ids(Path(args.ids)), return_report=True)
    write_midi(perf, args.out)
    print(f"{args.ids}: {len(perf)} notes, {perf.end:.2f}s -> {args.out}; "
          f"dropped/repaired events: {rep.total}" + (f" {rep.to_dict()}" if rep.total else ""))
    return 0


def cmd_pianoroll(args) -> int:
    from ..midi import read_midi
    from ..render import plot_pianoroll

    perf = read_midi(args.file)
    out = plot_pianoroll(perf, args.out, start=args.start, end=args.end)
    print(out)
    return 0


def _where(items) -> dict:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise TatumFlowError(f"--where expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_evaluate(args) -> int:
    from ..evaluation.report import evaluate

    rep = evaluate(args.gen, args.ref, args.out, gen_where=_where(args.gen_where), ref_where=_where(args.ref_where),
                   gen_name=args.gen_name, ref_name=args.ref_name, limit=args.limit, judge_path=args.judge)
    s = rep["set_vs_set"]["summary"]
    line = (f"{rep['gen']['pieces']} vs {rep['ref']['pieces']} pieces: mean OA {s['mean_oa']:.3f}, "
            f"mean KL {s['mean_kl']:.3f} bits over {s['features']} features")
    if rep["style"]:
        line += f"; P({rep['style']['target']}) {rep['style']['gen_mean']:.3f} vs {rep['style']['ref_mean']:.3f}"
    print(line)
    print(f"wrote {Path(args.out) / 'report.md'} and report.json ({rep['seconds']:.1f}s)")
    return 0


def cmd_judge(args) -> int:
    from ..evaluation.style import DEFAULT_JUDGE, train_style_judge

    judge = train_style_judge(args.index, target=args.target, column=args.column)
    out = judge.save(args.out or DEFAULT_JUDGE)
    t = judge.info["test"]
    print(f"{out}: test accuracy {t['accuracy']:.3f}, balanced accuracy {t['balanced_accuracy']:.3f}, "
          f"ROC AUC {t['roc_auc']:.4f} on {t['pieces']} pieces ({t['positives']} {args.target})")
    return 0


def cmd_train(args) -> int:
    from ..training.run import train_from_config

    s = train_from_config(args.config, data=args.data, out=args.out, overrides=args.overrides, resume=args.resume)
    val = ", ".join(f"{k} {v:.4g}" for k, v in (s.get("val") or {}).items())
    print(f"{s['out']}: {s['steps']} steps in {s['seconds']:.1f}s ({s['stop_reason']}), "
          f"{s['params']:,} parameters; {val}; checkpoint {s['checkpoint']}")
    return 0


def _tatumflow_generate(args, model) -> int:
    """Every TatumFlow mode: writes OUT (or OUT_<k>.mid per variation / alpha)."""
    from ..generation.pipeline import GenerationPipeline, Sampling
    from ..midi import read_midi, write_midi
    from ..training.trainer import select_device

    pipe = GenerationPipeline(model, device=select_device(args.device))
    s = Sampling(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
                 steps=args.steps, sampler=args.sampler, eta=args.eta, guidance=args.guidance,
                 use_cache=not args.no_cache, max_polyphony=args.max_polyphony,
                 max_note_seconds=args.max_note_seconds)

    def need(opt, what):
        v = getattr(args, opt)
        if not v:
            raise TatumFlowError(f"--mode {args.mode} needs --{opt.replace('_', '-')} ({what})")
        return v

    def load(path):
        perf = read_midi(path)
        return perf.slice(0, args.prompt_seconds) if args.prompt_seconds else perf

    mode = args.mode
    if mode == "unconditional":
        style = pipe.analyse(pipe.tokens(load(args.style))[: pipe.L])["style"] if args.style else None
        results = [("", pipe.unconditional(args.seconds, style=style, seed=args.seed, sampling=s))]
    elif mode == "continuation":
        results = [("", pipe.continuation(load(need("prompt", "the MIDI to continue")), args.seconds,
                                          seed=args.seed, sampling=s))]
    elif mode == "style-transfer":
        results = [("", pipe.style_transfer(load(need("prompt", "the content MIDI")),
                                            load(need("style", "the MIDI whose style to take")),
                                            args.strength, seed=args.seed, sampling=s))]
    elif mode == "improvise":
        rs = pipe.improvise(load(need("prompt", "the MIDI to improvise on")), args.creativity, args.variations,
                            seed=args.seed, sampling=s)
        results = [(f"_v{i}", r) for i, r in enumerate(rs)]
    elif mode == "edit-harmony":
        results = [("", pipe.edit_harmony(load(need("prompt", "the piece to re-harmonise")),
                                          need("chords", 'e.g. "Dm7 G7 Cmaj7 Cmaj7"'), args.strength,
                                          seed=args.seed, sampling=s))]
    else:  # interpolate
        alphas = [float(a) for a in args.alphas.split(",")]
        rs = pipe.interpolate(load(need("prompt", "the first style's MIDI")),
                              load(need("style", "the second style's MIDI")), alphas, args.seconds,
                              seed=args.seed, sampling=s)
        results = [(f"_a{a:.2f}", r) for a, r in zip(alphas, rs)]
    out = Path(args.out)
    for suffix, r in results:
        path = out.with_name(out.stem + suffix + (out.suffix or ".mid")) if suffix else out
        write_midi(r.performance, path)
        print(f"{path}: {mode}, {len(r.performance)} notes, {r.performance.end:.1f}s, "
              f"{len(r.ids)} tokens, {r.grammar_errors} grammar errors")
        if args.pianoroll:
            from ..render import plot_pianoroll

            png = Path(args.pianoroll)
            png = png.with_name(png.stem + suffix + ".png") if suffix else png
            plot_pianoroll(r.performance, png, title=f"{path.name} ({mode})")
            print(png)
    return 0


def cmd_generate(args) -> int:
    from ..generation.realtime import generate_from_prompt
    from ..midi import read_midi
    from ..models import from_checkpoint

    model, state = from_checkpoint(args.checkpoint)
    if state.get("family") == "tatumflow":
        return _tatumflow_generate(args, model)
    if args.mode != "continuation":
        raise TatumFlowError(f"{args.checkpoint}: a {state.get('family')} model only continues prompts "
                             f"(--mode continuation); the other modes need a TatumFlow checkpoint")
    if args.prompt:
        prompt = read_midi(args.prompt)
        if args.prompt_seconds:
            prompt = prompt.slice(0, args.prompt_seconds)
    else:
        from ..performance import Performance

        prompt = Performance.from_arrays([0.0], [0.5], [60], [80])
    res = generate_from_prompt(model, prompt, args.seconds, args.out, temperature=args.temperature,
                               seed=args.seed, live=args.live, port=args.port)
    print(f"{args.out}: {res['notes']} new notes, {args.seconds:g}s of music in {res['compute_seconds']:.2f}s "
          f"of compute (realtime factor {res['realtime_factor']:.0f}x)")
    if args.pianoroll:
        from ..render import plot_pianoroll

        plot_pianoroll(res["performance"], args.pianoroll, title=f"{Path(args.out).name} (prompt + continuation)")
        print(args.pianoroll)
    return 0


def cmd_assess(args) -> int:
    from ..assessment.data import DIMENSIONS
    from ..assessment.shipped import DEFAULT_MODEL, ForestAssessor, plot_ratings, ratings_table
    from ..midi import read_midi

    model = ForestAssessor.load(args.model or DEFAULT_MODEL)
    perfs, names, failed = [], [], []
    for f in args.files:
        try:
            perfs.append(read_midi(f))
            names.append(str(f))
        except TatumFlowError as exc:  # report and carry on with the others
            failed.append({"file": str(f), "error": str(exc)})
            print(f"tatumflow assess: skipped {exc}", file=sys.stderr)
    ratings = model.assess(perfs) if perfs else []
    table = ratings_table(ratings) if perfs else []
    if args.json:
        print(json.dumps({"model": model.meta, "scale": "1..7", "dimensions": list(DIMENSIONS),
                          "results": [{"file": n, "ratings": t} for n, t in zip(names, table)],
                          "failed": failed}, indent=2))
    else:
        for n, t in zip(names, table):
            print(n)
            print(_table([(d, f"{v:.2f}") for d, v in t.items()], ("dimension (low-high)", "rating 1..7")))
    if args.plot and perfs:
        plot_ratings(ratings, [Path(n).name for n in names], args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 1 if failed else 0


def cmd_assess_cv(args) -> int:
    from ..assessment.cv import run_cv
    from ..assessment.data import DIMENSIONS, load_percepiano

    data = load_percepiano(args.data)
    res = run_cv(args.model, args.protocol, data=data, seed=args.seed, seeds=args.seeds, bootstrap=args.bootstrap,
                 progress=True)
    out = res.as_dict()
    if args.out:
        from ..utils import write_json_atomic

        write_json_atomic(args.out, out)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    s, ci = res.scores, res.ci95

    def fmt(k):
        v = s[k]
        if v != v:
            return "n/a"
        lo, hi = ci.get(k, [float("nan")] * 2)
        return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if lo == lo else f"{v:.3f}"

    kind = ci.get("kind", "cluster bootstrap 95%") if ci else "no intervals"
    print(f"{res.model} under {args.protocol}: mean r {fmt('mean_r')}, R2 {fmt('r2')}, "
          f"within-excerpt r {fmt('within_excerpt_r')} ({kind}; {res.seconds:.1f}s)")
    if "fold_ensemble" in s:
        e = s["fold_ensemble"]
        print(f"mean of the 4 fold models' predictions: mean r {e['mean_r']:.3f}, R2 {e['r2']:.3f}")
    pd = s["per_dim"]
    print(_table([(d, f"{r:.3f}", f"{r2:.3f}", "n/a" if w != w else f"{w:.3f}")
                  for d, r, r2, w in zip(DIMENSIONS, pd["r"], pd["r2"], pd["within_excerpt_r"])],
                 ("dimension", "r", "R2", "within-excerpt r")))
    a = res.analysis
    print(f"\nmean absolute error {a['mae_overall']:.2f} (1..7 scale); hardest excerpts: "
          + ", ".join(f"{e['name']} ({e['mae']:.2f})" for e in a["hardest_excerpts"][:3])
          + "; hardest performers: " + ", ".join(f"{e['name']} ({e['mae']:.2f})" for e in a["hardest_performers"][:3]))
    if "top_features" in a:
        print("most important features: " + ", ".join(f"{f['name']} ({f['importance']:.3f})"
                                                     for f in a["top_features"][:10]))
    return 0


def cmd_demo(args) -> int:
    from ..demo import run_demo

    run_demo(args.out, corpus=args.corpus, workers=args.workers, train_seconds=args.train_seconds,
             tatumflow_seconds=args.tatumflow_seconds)
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tatumflow", description="TatumFlow: expressive piano MIDI toolkit.")
    from .. import __version__

    ap.add_argument("--version", action="version", version=f"tatumflow {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def tok_opts(p):
        p.add_argument("--release", choices=("note_off", "duration"), default="note_off",
                       help="end notes with NOTE_OFF tokens or DURATION tokens (default note_off)")
        p.add_argument("--tokenizer", metavar="JSON", help="tokenizer config file (overrides --release)")

    p = sub.add_parser("validate", help="check MIDI files and print a summary table",
                       description="Check every MIDI file (folders are searched recursively).")
    p.add_argument("paths", nargs="+", help="files or folders")
    p.add_argument("--json", action="store_true", help="machine-readable report, one record per file")
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--max-seconds", type=float, default=4 * 3600.0)
    p.add_argument("--min-notes", type=int, default=8)
    p.add_argument("--any-program", action="store_true", help="accept non-piano programs")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("corpus", help="built-in corpora", description="List or export built-in corpora.")
    csub = p.add_subparsers(dest="corpus_cmd", required=True, metavar="ACTION")
    csub.add_parser("list", help="list the built-in corpora")
    pe = csub.add_parser("export", help="export a corpus to MIDI (once, into the cache)")
    pe.add_argument("name", help="chorales or folk")
    pe.add_argument("--out", help="folder (default: the TatumFlow cache)")
    pe.add_argument("--workers", type=int)
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("prepare", help="validate and tokenize a corpus into a token store",
                       description="SRC: a folder of MIDI, a CSV index (path[,split]), or a built-in corpus name.")
    p.add_argument("src")
    p.add_argument("--out", required=True, help="store folder")
    p.add_argument("--workers", type=int, help="processes (default: all cores)")
    p.add_argument("--files-per-shard", type=int, default=64)
    p.add_argument("--where", action="append", metavar="KEY=VALUE",
                   help="keep only rows whose split or CSV column matches (repeatable)")
    tok_opts(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("inspect", help="statistics of a token store")
    p.add_argument("store")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("vocab", help="print the tokenizer vocabulary")
    p.add_argument("--all", action="store_true", help="list every token")
    p.add_argument("--json", action="store_true")
    tok_opts(p)
    p.set_defaults(func=cmd_vocab)

    p = sub.add_parser("tokenize", help="tokenize one MIDI file")
    p.add_argument("file")
    p.add_argument("--out", help=".npy or text file of ids (default: print)")
    p.add_argument("--names", action="store_true", help="print token names instead of ids")
    p.add_argument("--normalize", action="store_true", help="resolve pedal and overlaps first")
    tok_opts(p)
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("detokenize", help="turn ids (.npy or text) back into a MIDI file")
    p.add_argument("ids")
    p.add_argument("--out", required=True)
    tok_opts(p)
    p.set_defaults(func=cmd_detokenize)

    p = sub.add_parser("pianoroll", help="draw a piano-roll PNG of a MIDI file")
    p.add_argument("file")
    p.add_argument("--out", required=True)
    p.add_argument("--start", type=float, default=0.0)
    p.add_argument("--end", type=float)
    p.set_defaults(func=cmd_pianoroll)

    p = sub.add_parser("evaluate", help="compare two sets of pieces; write report.json and report.md",
                       description="GEN and REF: folders of MIDI, token stores, CSV indexes or corpus names.")
    p.add_argument("gen")
    p.add_argument("ref")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--gen-where", action="append", metavar="KEY=VALUE", help="filter GEN rows (split or a CSV column)")
    p.add_argument("--ref-where", action="append", metavar="KEY=VALUE", help="filter REF rows")
    p.add_argument("--gen-name", default="GEN")
    p.add_argument("--ref-name", default="REF")
    p.add_argument("--limit", type=int, help="at most N pieces per set")
    p.add_argument("--judge", help="style judge JSON (default: the shipped Art Tatum judge)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("judge", help="train the style judge (target pianist vs everyone else)")
    p.add_argument("index", help="CSV index with split and pianist columns (PiJAMA's index.csv)")
    p.add_argument("--target", default="Art Tatum")
    p.add_argument("--column", default="pianist")
    p.add_argument("--out", help="JSON path (default: the judge shipped in the package)")
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("train", help="train a model from a YAML preset",
                       description="Overrides are KEY=VALUE, e.g. train.max_steps=500 model.option=C.")
    p.add_argument("--config", required=True, help="YAML preset (see configs/)")
    p.add_argument("--data", help="token store (default: the built-in corpus)")
    p.add_argument("--out", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="generate with a trained model (TatumFlow: every mode)",
                       description="Music RNN: continues --prompt, writing OUT as notes are produced (--live "
                                   "plays them). TatumFlow: --mode unconditional | continuation (--prompt) | "
                                   "style-transfer (--prompt content, --style source, --strength) | improvise "
                                   "(--prompt, --creativity, --variations) | edit-harmony (--prompt, --chords) | "
                                   "interpolate (--prompt, --style, --alphas); same seed, same output.")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (runs/NAME/step-... or best)")
    p.add_argument("--mode", default="continuation", choices=["unconditional", "continuation", "style-transfer",
                                                              "improvise", "edit-harmony", "interpolate"])
    p.add_argument("--prompt", help="MIDI file to continue / transform (Music RNN default: a single middle C)")
    p.add_argument("--prompt-seconds", type=float, help="use only the first S seconds of the prompt")
    p.add_argument("--style", help="MIDI whose style to use (style-transfer, interpolate, unconditional)")
    p.add_argument("--chords", help='chord progression for edit-harmony, e.g. "Dm7 G7 Cmaj7 Cmaj7"')
    p.add_argument("--strength", type=float, default=0.6, help="how far to re-noise (style-transfer, edit-harmony)")
    p.add_argument("--creativity", type=float, default=0.5, help="improvise: 0 close to the prompt .. 1 free")
    p.add_argument("--variations", type=int, default=3, help="improvise: how many")
    p.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="interpolate: style mix values")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds of music to add")
    p.add_argument("--out", required=True)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--min-p", type=float)
    p.add_argument("--steps", type=int, default=50, help="denoising steps")
    p.add_argument("--sampler", default="ddim", choices=["ddim", "ddpm"])
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta (0 deterministic .. 1)")
    p.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance weight (1 = none)")
    p.add_argument("--no-cache", action="store_true", help="decode without the KV cache (slower; same output)")
    p.add_argument("--max-polyphony", type=int, help="TatumFlow: no new note while this many sound")
    p.add_argument("--max-note-seconds", type=float, help="TatumFlow: release any note held this long")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--live", action="store_true", help="also play on a MIDI port (mido + python-rtmidi)")
    p.add_argument("--port", help="MIDI output port name (default: a virtual port 'TatumFlow')")
    p.add_argument("--pianoroll", help="also write a piano-roll PNG")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("assess", help="predict the 19 perceptual ratings (PercePiano) of MIDI performances",
                       description="Rate performances on the 19 PercePiano dimensions (1..7) with the "
                                   "assessor shipped in the package (or --model).")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--plot", type=Path, help="write a bar chart PNG of the ratings")
    p.add_argument("--model", type=Path, help="an assessor .npz (default: the shipped one)")
    p.set_defaults(func=cmd_assess)

    p = sub.add_parser("assess-cv", help="train and score an assessor under an evaluation protocol",
                       description="Reproduce the assessor numbers: train MODEL on each fold of PROTOCOL "
                                   "over PercePiano and print mean r, R2, within-excerpt r and the "
                                   "per-dimension table.")
    p.add_argument("--protocol", required=True, choices=["excerpt", "player", "paper-performer", "paper-piece"])
    p.add_argument("--model", default="extra-trees",
                   help="mean, ridge, random-forest, extra-trees, extra-trees-compact, note-transformer, ast, "
                        "ast-ssast, hybrid, hybrid-ast, hand-mlp; join names with '+' to average them")
    p.add_argument("--data", type=Path, help="the PercePiano folder (default: ../shared/data/percepiano)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=1, help="average this many seeds of each model (an ensemble)")
    p.add_argument("--bootstrap", type=int, default=1000, help="cluster-bootstrap resamples (0: none)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", type=Path, help="also write the full result as JSON")
    p.set_defaults(func=cmd_assess_cv)

    p = sub.add_parser("demo", help="the main job on the built-in corpus")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--corpus", default="chorales")
    p.add_argument("--workers", type=int)
    p.add_argument("--train-seconds", type=float, default=60.0, help="Music RNN training time (0 skips it)")
    p.add_argument("--tatumflow-seconds", type=float, default=180.0,
                   help="tiny TatumFlow training time before its every-mode outputs (0 skips it)")
    p.set_defaults(func=cmd_demo)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (TatumFlowError, FileNotFoundError, ValueError) as exc:
        print(f"tatumflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tatumflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
