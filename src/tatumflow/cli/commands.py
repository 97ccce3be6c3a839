"""One function per command: read the parsed arguments, call one library function, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import TatumFlowError


def _tokenizer(args):
    from ..tokenizer import PerformanceTokenizer, TokenizerConfig

    cfg = TokenizerConfig.load(args.tokenizer) if args.tokenizer else TokenizerConfig(release=args.release)
    return PerformanceTokenizer(cfg)


def _where(items):
    from ..corpus.sources import parse_where

    return parse_where(items)


def validate(args) -> int:
    from ..midi.validate import ValidationConfig, format_results, validate_paths

    cfg = ValidationConfig(min_seconds=args.min_seconds, max_seconds=args.max_seconds, min_notes=args.min_notes,
                           allowed_programs=None if args.any_program else ValidationConfig().allowed_programs)
    results = validate_paths(args.paths, cfg, progress=not args.json and sys.stderr.isatty())
    if not results:
        raise TatumFlowError(f"{' '.join(map(str, args.paths))}: no .mid/.midi files found (searched recursively)")
    n_ok = sum(r.ok for r in results)
    print(json.dumps({"files": len(results), "ok": n_ok, "failed": len(results) - n_ok,
                      "results": [r.to_dict() for r in results]}, indent=1, ensure_ascii=False)
          if args.json else format_results(results))
    return 0 if n_ok == len(results) else 1


def corpus(args) -> int:
    from ..corpus import BUILTIN_CORPORA, export_corpus
    from ..utils import format_table

    if args.corpus_cmd == "export" and not args.name:
        raise TatumFlowError(f"corpus export needs a corpus name ({', '.join(BUILTIN_CORPORA)})")
    print(format_table(BUILTIN_CORPORA.items(), ("name", "description")) if args.corpus_cmd == "list"
          else export_corpus(args.name, out=args.out, workers=args.workers))
    return 0


def prepare(args) -> int:
    from ..data import prepare_store

    r = prepare_store(args.src, args.out, tokenizer_config=_tokenizer(args).config, workers=args.workers,
                      files_per_shard=args.files_per_shard, where=_where(args.where))
    print(f"{r.store}: {r.files} files stored, {r.failed} failed "
          f"({r.shards_built} shards built, {r.shards_reused} reused) in {r.seconds:.2f}s")
    for f in r.failures:
        print(f"  failed: {f['path']}: {f['reason']}")
    return 1 if r.failed else 0


def inspect(args) -> int:
    from ..data import TokenStore, store_statistics
    from ..data.stats import format_statistics

    store = TokenStore(args.store)
    st = store_statistics(store)
    print(json.dumps({**st, "failures": store.failures}, indent=1, ensure_ascii=False) if args.json
          else format_statistics(st, store.failures))
    return 0


def vocab(args) -> int:
    from ..tokenizer.ids import describe_vocabulary

    tok = _tokenizer(args)
    v = tok.vocab
    print(json.dumps({"config": tok.config.to_dict(), "hash": tok.config.hash, "size": v.size,
                      "tokens": [v.token_name(i) for i in range(v.size)]}, indent=1) if args.json
          else describe_vocabulary(tok, every_token=args.all))
    return 0


def tokenize(args) -> int:
    from ..midi import normalize, read_midi
    from ..tokenizer.ids import write_ids

    tok = _tokenizer(args)
    perf = read_midi(args.file)
    ids = tok.encode(normalize(perf) if args.normalize else perf)
    if args.out:
        print(f"{args.file}: {len(perf)} notes -> {ids.size} tokens -> {write_ids(ids, args.out)}")
    else:
        print(" ".join(map(str, tok.token_names(ids) if args.names else ids.tolist())))
    return 0


def detokenize(args) -> int:
    from ..midi import write_midi
    from ..tokenizer.ids import read_ids

    perf, rep = _tokenizer(args).decode(read_ids(args.ids), return_report=True)
    write_midi(perf, args.out)
    print(f"{args.ids}: {len(perf)} notes, {perf.end:.2f}s -> {args.out}; "
          f"dropped/repaired events: {rep.total}" + (f" {rep.to_dict()}" if rep.total else ""))
    return 0


def pianoroll(args) -> int:
    from ..midi import read_midi
    from ..render import plot_pianoroll

    if args.end is not None and args.end <= args.start:
        raise TatumFlowError(f"--end {args.end:g} must be after --start {args.start:g}")
    print(plot_pianoroll(read_midi(args.file), args.out, start=args.start, end=args.end))
    return 0


def render(args) -> int:
    import time

    from ..midi import read_midi
    from ..render import render_file

    t0 = time.perf_counter()
    perf = read_midi(args.file)
    audio = render_file(perf, args.out, sample_rate=args.sample_rate, soundfont=args.soundfont,
                        renderer=args.renderer)
    dt = time.perf_counter() - t0
    print(f"{args.out}: {perf.end:.1f}s of music with the {audio.describe()} in {dt:.2f}s "
          f"({perf.end / max(dt, 1e-9):.0f}x real time)")
    return 0


def evaluate(args) -> int:
    from ..evaluation.report import evaluate as run, summary_line

    rep = run(args.gen, args.ref, args.out, gen_where=_where(args.gen_where), ref_where=_where(args.ref_where),
              gen_name=args.gen_name, ref_name=args.ref_name, limit=args.limit, judge_path=args.judge)
    print(summary_line(rep))
    print(f"wrote {Path(args.out) / 'report.md'} and report.json ({rep['seconds']:.1f}s)")
    failed = [(side, f) for side in ("gen", "ref") for f in rep[side]["failures"]]
    for side, f in failed:
        print(f"  failed ({side}): {f['path']}: {f['reason']}")
    return 1 if failed else 0


def judge(args) -> int:
    from ..evaluation.style import DEFAULT_JUDGE, train_style_judge

    j = train_style_judge(args.index, target=args.target, column=args.column)
    out, t = j.save(args.out or DEFAULT_JUDGE), j.info["test"]
    print(f"{out}: test accuracy {t['accuracy']:.3f}, balanced accuracy {t['balanced_accuracy']:.3f}, "
          f"ROC AUC {t['roc_auc']:.4f} on {t['pieces']} pieces ({t['positives']} {args.target})")
    for f in j.info["failures"]:
        print(f"  failed: {f['path']}: {f['reason']}")
    return 1 if j.info["failures"] else 0


def train(args) -> int:
    from ..models.registry import FAMILIES
    from ..training.run import train_from_config

    s = train_from_config(args.config, families=FAMILIES, data=args.data, out=args.out,
                          overrides=args.overrides, resume=args.resume)
    if s["rank"] != 0:  # one process of a torchrun run: rank 0 reports
        return 0
    val = ", ".join(f"{k} {v:.4g}" for k, v in (s.get("val") or {}).items())
    print(f"{s['out']}: {s['steps']} steps in {s['seconds']:.1f}s ({s['stop_reason']}"
          f"{', %d processes' % s['world_size'] if s['world_size'] > 1 else ''}), "
          f"{s['params']:,} parameters; {val}; checkpoint {s['checkpoint']}")
    return 0


def generate(args) -> int:
    from ..models.registry import FAMILIES
    from ..pretrained import load_model
    from ..utils import select_device

    from ..pretrained import default_model

    if args.checkpoint is not None and args.model is not None:
        raise TatumFlowError("give --checkpoint DIR or --model NAME, not both")
    source = args.checkpoint or args.model
    if source is None:
        source = default_model("tatumflow")
        print(f"model: the shipped {source} (--model NAME or --checkpoint DIR for another)")
    model, state = load_model(source)
    family = FAMILIES[state["family"]]
    for dest, (owner, flag, default) in args.family_options.items():  # another family's option, given
        if owner != family.name and getattr(args, dest) != default:
            raise TatumFlowError(f"{flag} applies to {owner} checkpoints; {source} is a {family.name} model")
    opts = vars(args)
    if args.rerank > 1:
        opts["scorer"] = make_scorer(args.rerank_by)
    family.generate(model, opts, device=select_device(args.device), echo=print)
    return 0


def make_scorer(name: str):
    """The ``--rerank-by`` scorer: the style judge, or one of the shipped assessor's scales."""
    from ..generation.rerank import ASSESSOR_SCALES, Scorer

    if name not in ASSESSOR_SCALES:
        return Scorer(name)
    from ..assessment.data import DIMENSIONS
    from ..assessment.shipped import ForestAssessor, rate

    fa, col = ForestAssessor.load(), DIMENSIONS.index(ASSESSOR_SCALES[name])
    return Scorer(name, rater=lambda perf: rate(perf, fa)["rating"][col])


def scorecard(args) -> int:
    from ..scorecard import format_table, scorecard as run

    if (args.checkpoint is None) == (args.model is None):
        raise TatumFlowError("give the model to score as --checkpoint DIR or --model NAME (one of them)")
    where = _where(args.where)
    if not where:
        raise TatumFlowError("--where is required: the target pieces, e.g. --where pianist=\"Art Tatum\" "
                             "--where split=test")
    contrast = _where(args.contrast_where) if args.contrast_where else None
    ref = _where(args.reference_where) if args.reference_where else None
    doc = run(args.checkpoint or args.model, args.data, args.out, where=where, contrast_where=contrast,
              reference_where=ref, baselines=args.baseline, quick=args.quick, seed=args.seed, steps=args.steps,
              guidance=args.guidance, judge_path=args.judge,
              echo=(lambda m: print(m, file=sys.stderr)) if args.json else print)
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(format_table(doc))
        missed = [t for t in doc["targets"] if t["met"] is False]
        print(f"targets met: {sum(t['met'] is True for t in doc['targets'])} of {len(doc['targets'])}"
              + (f" (missed: {', '.join(t['key'] for t in missed)})" if missed else ""))
        print(f"wrote {Path(args.out) / 'scorecard.md'} and scorecard.json ({doc['seconds']:.0f}s)")
    return 0


def models(args) -> int:
    from ..pretrained import shipped_models
    from ..utils import format_table

    cards = shipped_models()
    print(json.dumps(cards, indent=1) if args.json else format_table(
        [(c["name"], c["family"], f"{c['parameters']:,}", f"{c['size_bytes'] / 1e6:.1f} MB", c["summary"])
         for c in cards], ("name", "family", "parameters", "size", "summary")))
    return 0


def melody(args) -> int:
    from ..server.melody import run_verb

    return run_verb(args.verb, vars(args), echo=print)


def studio(args) -> int:
    from ..server.studio import serve
    from ..utils import cache_dir

    serve(args.workspace or cache_dir() / "studio", host=args.host, port=args.port,
          checkpoints=args.checkpoint or [], soundfont=args.soundfont, echo=print)
    return 0


def live(args) -> int:
    from ..pretrained import default_model
    from ..server.live import run_live

    run_live(args.model or default_model("music_rnn"), in_port=args.in_port, out_port=args.out_port, silence=args.silence, bars=args.bars,
             qpm=args.qpm, answer_seconds=args.answer_seconds, seed=args.seed, echo=print)
    return 0


def assess(args) -> int:
    from ..assessment.shipped import assess_files, format_ratings, plot_ratings

    rep = assess_files(args.files, args.model, score=args.score, on_skip=lambda e: print(f"tatumflow assess: skipped {e}",
                                                                       file=sys.stderr))
    ratings = rep.pop("ratings")
    print(json.dumps(rep, indent=2) if args.json else format_ratings(rep["results"]))
    if rep["failed"]:
        print(f"tatumflow assess: {len(rep['results'])} rated, {len(rep['failed'])} failed", file=sys.stderr)
    if args.plot and len(ratings):
        plot_ratings(ratings, [Path(r["file"]).name for r in rep["results"]], args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 1 if rep["failed"] else 0


def assess_cv(args) -> int:
    from ..assessment.cv import FoldStore, format_cv, run_cv
    from ..assessment.data import load_percepiano

    if args.folds is not None and not args.out:
        raise ValueError("--folds needs --out (the kept folds go to OUT.folds/)")
    folds = Path(f"{args.out}.folds") if args.out else None
    res = run_cv(args.model, args.protocol, data=load_percepiano(args.data), seed=args.seed, seeds=args.seeds,
                 bootstrap=args.bootstrap, progress=True, score=args.score, folds_dir=folds,
                 log=lambda line: print(line, file=sys.stderr, flush=True), only=args.folds)
    if res is None:
        print(f"kept folds {', '.join(str(i + 1) for i in args.folds)} in {folds}; the same command without "
              f"--folds scores the whole protocol once every fold is kept")
        return 0
    if args.out:
        from ..utils import write_json_atomic

        write_json_atomic(args.out, res.as_dict())
        FoldStore.clear(folds)
    print(json.dumps(res.as_dict(), indent=2) if args.json else format_cv(res, args.protocol))
    return 0


def demo(args) -> int:
    from ..demo import run_demo

    run_demo(args.out, corpus=args.corpus, workers=args.workers, train_seconds=args.train_seconds,
             tatumflow_seconds=args.tatumflow_seconds, melody_seconds=args.melody_seconds)
    return 0
