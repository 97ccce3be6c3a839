"""`tatumflow` command line: parses arguments and dispatches to :mod:`.commands`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..errors import TatumFlowError
from ..generation.rerank import SCORERS
from ..utils import arg_number, arg_path
from . import commands as C

FLAG = {"action": "store_true"}
IN_FILE, IN_DIR, IN_ANY = arg_path("file"), arg_path("dir"), arg_path("any")
OUT_FILE, OUT_DIR = arg_path("out-file"), arg_path("out-dir")
POS_INT, NONNEG_INT = arg_number(int, low=1), arg_number(int, low=0)
NONNEG = arg_number(float, low=0)
TOKENIZER = [("--release", dict(choices=("note_off", "duration"), default="note_off",
                                help="end notes with NOTE_OFF tokens or DURATION tokens (default note_off)")),
             ("--tokenizer", dict(metavar="JSON", type=IN_FILE, help="tokenizer config file (overrides --release)"))]


def fold_numbers(text: str) -> list[int]:
    """``--folds``: fold numbers as the log prints them (1-based), e.g. ``1-5,9`` -> [0, 1, 2, 3, 4, 8]."""
    out: set[int] = set()
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi if dash else lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list of fold numbers like 1-5,9") from None
        if a < 1 or b < a:
            raise argparse.ArgumentTypeError(f"{part.strip()!r}: folds count from 1, ranges go up (like 1-5)")
        out.update(range(a - 1, b))
    return sorted(out)


WHERE = dict(action="append", metavar="KEY=VALUE", help="keep rows whose split or CSV column matches (repeatable)")

#: command -> (function, help, [(flags, add_argument keywords), ...])
COMMANDS = {
    "validate": (C.validate, "check MIDI files and print a summary table (folders are searched recursively)", [
        ("paths", dict(nargs="+", type=IN_ANY, help="files or folders")),
        ("--json", dict(FLAG, help="machine-readable report, one record per file")),
        ("--min-seconds", dict(type=NONNEG, default=1.0)),
        ("--max-seconds", dict(type=arg_number(float, low=0, low_open=True), default=4 * 3600.0)),
        ("--min-notes", dict(type=POS_INT, default=8)),
        ("--any-program", dict(FLAG, help="accept non-piano programs"))]),
    "corpus": (C.corpus, "list the built-in corpora, or export one to MIDI (once, into the cache)", [
        ("corpus_cmd", dict(choices=("list", "export"), metavar="list|export")),
        ("name", dict(nargs="?", help="export: chorales or folk")),
        ("--out", dict(type=OUT_DIR, help="export: folder (default: the cache)")), ("--workers", dict(type=POS_INT))]),
    "prepare": (C.prepare, "validate and tokenize a corpus (folder, CSV index or built-in name) into a token store", [
        ("src", {}), ("--out", dict(required=True, type=OUT_DIR, help="store folder")),
        ("--workers", dict(type=POS_INT, help="processes (default: all cores)")),
        ("--files-per-shard", dict(type=POS_INT, default=64)), ("--where", WHERE), *TOKENIZER]),
    "inspect": (C.inspect, "statistics of a token store", [("store", dict(type=IN_DIR)), ("--json", FLAG)]),
    "vocab": (C.vocab, "print the tokenizer vocabulary", [("--all", dict(FLAG, help="list every token")),
                                                          ("--json", FLAG), *TOKENIZER]),
    "tokenize": (C.tokenize, "tokenize one MIDI file", [
        ("file", dict(type=IN_FILE)), ("--out", dict(type=OUT_FILE, help=".npy or text file of ids (default: print)")),
        ("--names", dict(FLAG, help="print token names instead of ids")),
        ("--normalize", dict(FLAG, help="resolve pedal and overlaps first")), *TOKENIZER]),
    "detokenize": (C.detokenize, "turn ids (.npy or text) back into a MIDI file",
                   [("ids", dict(type=IN_FILE)), ("--out", dict(required=True, type=OUT_FILE)), *TOKENIZER]),
    "pianoroll": (C.pianoroll, "draw a piano-roll PNG of a MIDI file", [
        ("file", dict(type=IN_FILE)), ("--out", dict(required=True, type=OUT_FILE)),
        ("--start", dict(type=NONNEG, default=0.0)), ("--end", dict(type=arg_number(float, low=0, low_open=True)))]),
    "render": (C.render, "render a MIDI file to audio (.wav or .flac): a SoundFont piano, or the built-in one", [
        ("file", dict(type=IN_FILE)), ("--out", dict(required=True, type=OUT_FILE, help="OUT.wav or OUT.flac")),
        ("--soundfont", dict(type=IN_FILE, help="a .sf2 SoundFont (default: $TATUMFLOW_SOUNDFONT or a system one)")),
        ("--sample-rate", dict(type=arg_number(int, low=8000, high=192000), default=44100)),
        ("--renderer", dict(choices=("auto", "soundfont", "builtin"), default="auto",
                            help="auto: the SoundFont when one is installed, else the built-in piano"))]),
    "evaluate": (C.evaluate, "compare two sets of pieces (folders, stores, CSV indexes, corpora); write a report", [
        ("gen", {}), ("ref", {}), ("--out", dict(required=True, type=OUT_DIR, help="report folder")),
        ("--gen-where", WHERE), ("--ref-where", WHERE), ("--gen-name", dict(default="GEN")),
        ("--ref-name", dict(default="REF")), ("--limit", dict(type=POS_INT, help="at most N pieces per set")),
        ("--judge", dict(type=IN_FILE, help="style judge JSON (default: the shipped Art Tatum judge)"))]),
    "judge": (C.judge, "train the style judge (target pianist vs everyone else)", [
        ("index", dict(type=IN_FILE, help="CSV index with split and pianist columns (PiJAMA's index.csv)")),
        ("--target", dict(default="Art Tatum")), ("--column", dict(default="pianist")),
        ("--out", dict(type=OUT_FILE, help="JSON path (default: the judge shipped in the package)"))]),
    "train": (C.train, "train a model from a YAML preset (overrides: train.max_steps=500 model.option=C ...)", [
        ("--config", dict(required=True, type=IN_FILE, help="YAML preset (see configs/)")),
        ("--data", dict(type=IN_DIR, help="token store (default: the built-in corpus)")),
        ("--out", dict(type=OUT_DIR, help="run folder (default: runs/<config name>)")),
        ("--resume", dict(FLAG, help="continue from the run folder's last checkpoint")),
        ("overrides", dict(nargs="*", metavar="KEY=VALUE"))]),
    "generate": (C.generate, "generate with a trained model (its family's modes; same seed, same output)", [
        ("--checkpoint", dict(help="checkpoint folder (runs/NAME/step-... or best)")),
        ("--model", dict(help="a shipped model's name (tatumflow models); default: the shipped plain transformer "
                          "for continuation and unconditional, the shipped control-track transformer for the "
                          "other TatumFlow modes")),
        ("--mode", dict(help="what to generate (default continuation); the modes of each family are below")),
        ("--prompt", dict(type=IN_FILE,
                          help="MIDI file to continue / transform (Music RNN default: a single middle C)")),
        ("--prompt-seconds", dict(type=arg_number(float, low=0, low_open=True),
                                  help="use only the first S seconds of the prompt")),
        ("--seconds", dict(type=arg_number(float, low=0, low_open=True, high=3600), default=30.0,
                           help="seconds of music to add")),
        ("--out", dict(required=True, type=OUT_FILE)),
        ("--temperature", dict(type=arg_number(float, low=0, low_open=True), default=1.0)),
        ("--device", dict(default="auto")), ("--seed", dict(type=NONNEG_INT, default=0)),
        ("--pianoroll", dict(type=OUT_FILE, help="also write a piano-roll PNG")),
        ("--rerank", dict(type=arg_number(int, low=1, high=64), default=1, metavar="N",
                          help="draw N candidates (seeds SEED..SEED+N-1) and keep the best by --rerank-by")),
        ("--rerank-by", dict(choices=SCORERS, default="style",
                             help="style: the style judge's P(Art Tatum); interpretation / music-making: "
                                  "the assessor's ratings"))]),
    "scorecard": (C.scorecard, "measure every generation mode of a model on held-out data (controls, style, "
                                "likelihood) next to real music", [
        ("--checkpoint", dict(type=IN_DIR, help="checkpoint folder to score")),
        ("--model", dict(help="a shipped model's name (tatumflow models) to score")),
        ("--data", dict(required=True, type=IN_ANY, help="folder of MIDI or CSV index (PiJAMA's index.csv)")),
        ("--where", dict(WHERE, help="the target pieces, e.g. pianist=\"Art Tatum\" split=test (repeatable)")),
        ("--contrast-where", dict(WHERE, help="other pianists' pieces (style transfer, interpolation)")),
        ("--reference-where", dict(WHERE, help="the real-vs-real reference (default: the target filters "
                                               "on the val split, or train when the target is val)")),
        ("--baseline", dict(action="append", default=[], metavar="CK_OR_NAME",
                            help="another model scored on the modes it shares (repeatable)")),
        ("--out", dict(required=True, type=OUT_DIR, help="folder for scorecard.json, scorecard.md, midi/")),
        ("--quick", dict(FLAG, help="a reduced card (fewer prompts, shorter)")),
        ("--steps", dict(type=arg_number(int, low=1, high=1000), help="denoising steps (default: the model's)")),
        ("--guidance", dict(type=arg_number(float, low=0), help="classifier-free guidance weight of the denoising "
                                                                "models (default: the model's)")),
        ("--seed", dict(type=NONNEG_INT, default=0)),
        ("--judge", dict(type=IN_FILE, help="style judge JSON (default: the shipped Art Tatum judge)")),
        ("--json", dict(FLAG, help="print the card as JSON instead of the table"))]),
    "models": (C.models, "list the models shipped in the package, with their model cards", [("--json", FLAG)]),
    "melody": (C.melody, "MelodyVAE: train on melodies, generate, encode, interpolate, bend, or serve OSC", "melody"),
    "studio": (C.studio, "the web studio: open, hear, generate, rate and compare in a browser (localhost)", [
        ("--host", dict(default="127.0.0.1", help="address to bind (default: this machine only)")),
        ("--port", dict(type=arg_number(int, low=1, high=65535), default=8765)),
        ("--workspace", dict(type=OUT_DIR, help="folder for uploads, results and history "
                                                "(default: the cache's studio/)")),
        ("--checkpoint", dict(action="append", type=IN_DIR, metavar="DIR",
                              help="a generator checkpoint to offer besides the shipped models (repeatable)")),
        ("--soundfont", dict(type=IN_FILE, help="SoundFont for the audio (default: as `render`)"))]),
    "live": (C.live, "call and response: answer each phrase played on a MIDI keyboard, in time", [
        ("--in", dict(dest="in_port", metavar="PORT", help="MIDI input port (default: a virtual port 'TatumFlow in')")),
        ("--out", dict(dest="out_port", metavar="PORT", help="MIDI output port (default: a virtual port)")),
        ("--model", dict(help="a music_rnn (lowest latency) or tatumflow checkpoint or shipped name "
                              "(default: the shipped Music RNN)")),
        ("--silence", dict(type=arg_number(float, low=0.05, high=10), default=0.5,
                           help="a pause this long ends a phrase (default 0.5 s)")),
        ("--bars", dict(type=arg_number(int, low=1, high=64), help="also end a phrase after N bars")),
        ("--qpm", dict(type=arg_number(float, low=20, high=400), default=120.0, help="tempo for --bars")),
        ("--answer-seconds", dict(type=arg_number(float, low=0.5, high=120), default=8.0)),
        ("--seed", dict(type=NONNEG_INT, default=0))]),
    "assess": (C.assess, "predict the 19 perceptual ratings (PercePiano, 1..7) of MIDI performances", [
        ("files", dict(nargs="+", type=Path)), ("--json", dict(FLAG, help="print JSON instead of tables")),
        ("--plot", dict(type=OUT_FILE, help="write a bar chart PNG of the ratings")),
        ("--score", dict(type=IN_FILE, help="the score played from (MIDI or MusicXML): rate with the score-aware "
                                            "assessor, which reads the deviations from it")),
        ("--model", dict(type=IN_FILE, help="an assessor .npz (default: the shipped one)"))]),
    "assess-cv": (C.assess_cv, "train and score an assessor under an evaluation protocol (PercePiano)", [
        ("--protocol", dict(required=True, choices=["excerpt", "player", "piece", "paper-performer", "paper-piece"])),
        ("--score", dict(FLAG, help="add the score-relative features (each segment aligned to its score)")),
        ("--model", dict(default="extra-trees-per-dim+boosting-per-dim", help="mean, ridge, random-forest, extra-trees, "
                         "extra-trees-per-dim, extra-trees-per-dim-compact, boosting-per-dim (per-dim: one model per "
                         "rating; default: per rating extra trees averaged with boosting), note-boosting (boosting "
                         "per rating on single notes in context, a segment's notes averaged; with --score it reads "
                         "each note's deviations from the score), note-transformer, "
                         "note-transformer-score (each note with its deviations from the score), ast, ast-fine (25 ms "
                         "frames), ast-ssast, hybrid, hybrid-score, hybrid-ast, hand-mlp (neural ones stop early on "
                         "a validation part; name@2m or @8m: a larger network than the default @0.2m); 'a+b' averages")),
        ("--data", dict(type=IN_DIR, help="the PercePiano folder (default: ../shared/data/percepiano)")),
        ("--seed", dict(type=NONNEG_INT, default=0)),
        ("--seeds", dict(type=POS_INT, default=1, help="average this many seeds of each model (an ensemble)")),
        ("--bootstrap", dict(type=NONNEG_INT, default=1000, help="cluster-bootstrap resamples (0: none)")),
        ("--json", FLAG), ("--out", dict(type=OUT_FILE, help="also write the full result as JSON; each finished fold "
                                                          "is kept in OUT.folds/ until then, so the same command "
                                                          "run again after an interruption resumes")),
        ("--folds", dict(type=fold_numbers, metavar="LIST", help="train only these folds (e.g. 1-5,9) into OUT.folds/ "
                                                                 "and stop; the command run again without --folds "
                                                                 "scores the whole protocol from the kept folds (shares "
                                                                 "a long cross-validation between processes)"))]),
    "demo": (C.demo, "the main job on the built-in corpus", [
        ("--out", dict(type=OUT_DIR, default="out/demo")), ("--corpus", dict(default="chorales")),
        ("--workers", dict(type=POS_INT)),
        ("--train-seconds", dict(type=NONNEG, default=30.0, help="Music RNN training time (0 skips it)")),
        ("--tatumflow-seconds", dict(type=NONNEG, default=60.0,
                                     help="tiny TatumFlow training time (the music comes from the shipped models)")),
        ("--melody-seconds", dict(type=NONNEG, default=45.0, help="MelodyVAE training time (0 skips it)"))]),
}


def _family_options(p: argparse.ArgumentParser) -> None:
    """Each family's own ``generate`` options, in a group per family; which family owns which."""
    from ..models.registry import FAMILIES

    owners = {}
    for fam in FAMILIES.values():
        g = p.add_argument_group(f"{fam.name} options (--mode {' | '.join(fam.modes)})")
        fam.add_generate_options(g)
        owners.update({a.dest: (fam.name, a.option_strings[0], a.default) for a in g._group_actions})
    p.set_defaults(family_options=owners)


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (the option and the problem), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    ap = Parser(prog="tatumflow", description="TatumFlow: expressive piano MIDI toolkit.")
    ap.add_argument("--version", action="version", version=f"tatumflow {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (func, text, spec) in COMMANDS.items():
        if spec == "melody":  # the MelodyVAE verbs' options live with the session they drive
            from ..server.melody import CLI_OPTIONS as spec
        p = sub.add_parser(name, help=text, description=text)
        for flag, kw in spec:
            p.add_argument(flag, **kw)
        p.set_defaults(func=func)
        if name == "generate":
            _family_options(p)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and isinstance(getattr(args, "inputs", None), list) and not any(e.startswith("-") for e in extra):
            args.inputs += extra  # files given after options (`melody encode --model M a.mid`)
        elif extra:
            print(f"tatumflow {args.command}: error: unrecognized arguments: {' '.join(extra)} "
                  f"(see tatumflow {args.command} --help)", file=sys.stderr)
            return 2
    except SystemExit as exc:  # --help, --version, or a usage error already printed in one line
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except (TatumFlowError, ValueError) as exc:
        print(f"tatumflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the system refused (a folder for a file, no permission, disk full)
        what = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        print(f"tatumflow {args.command}: error: {what}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tatumflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
