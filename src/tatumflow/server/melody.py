"""A MelodyVAE session: what the Max for Live device did, as a library.

:func:`train_melody` runs seed 003's recipe (or the old one it replaced) through
the one Trainer, in epochs. :class:`MelodySession` holds one model and does every
musician action on it: train in the background (progress, stop, keep the best),
encode, generate, interpolate, bend / reset, clear, load, save. The OSC server
(:mod:`.osc`) and ``tatumflow melody`` call it."""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from ..errors import TatumFlowError
from ..midi import read_midi, write_midi
from ..models.melody_vae import (Bender, MelodyDataset, MelodyVAE, MelodyVAEConfig, concatenate, decode, encode,
                                 interpolate, load_melodies, parse_z)
from ..models.melody_vae.data import split_windows
from ..performance import Performance
from ..training import TrainConfig, Trainer
from ..training.checkpoint import model_state, save_checkpoint
from ..utils import arg_number, seeded_torch


@dataclass(frozen=True)
class Recipe:
    """How a MelodyVAE is trained, in epochs (seed 003's numbers for ``new``)."""

    batch_size: int
    eval_batch_size: int
    lr_schedule: str          # exponential | constant
    lr_decay: float           # per decay_epochs
    decay_epochs: int
    anneal_epochs: int        # KL weight 0 -> 1 over these epochs (0: full KL from the start)
    patience: Optional[int]   # early stopping after this many epochs without improvement
    dropout: float
    onset_weight: float
    transpose: tuple[int, ...]


RECIPES = {
    "new": Recipe(64, 128, "exponential", 0.8, 5, 10, 15, 0.2, 1.0, (-3, -2, -1, 1, 2, 3)),
    "old": Recipe(128, 1000, "constant", 1.0, 5, 0, None, 0.0, 0.75, tuple(t for t in range(-12, 13) if t)),
}


def train_melody(data: "str | os.PathLike", out: "str | os.PathLike", *, recipe: str = "new", epochs: int = 100,
                 lr: float = 1e-3, seed: int = 0, voice: str = "mono", model: Optional[dict] = None,
                 max_seconds: Optional[float] = None, progress: bool = True, on_row: Optional[Callable[[dict], None]] = None,
                 on_trainer: Optional[Callable[[Trainer], None]] = None) -> tuple[MelodyVAE, dict]:
    """Train a MelodyVAE on the melodies of ``data`` (folder, CSV, corpus name, store)
    with a :data:`RECIPES` recipe for at most ``epochs`` epochs; checkpoints go to
    ``out``; the best validation ELBO's weights are kept. ``model``: config
    overrides (e.g. ``{"z_dim": 16}``). ``on_trainer`` gets the Trainer (to stop it)."""
    if recipe not in RECIPES:
        raise TatumFlowError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
    if epochs < 1:
        raise TatumFlowError(f"epochs must be >= 1, got {epochs}")
    r = RECIPES[recipe]
    cfg = MelodyVAEConfig(**{"dropout": r.dropout, "onset_weight": r.onset_weight, **(model or {})})
    t0 = time.perf_counter()
    windows, report = load_melodies(data, cfg, voice=voice)
    tr, va = split_windows(windows)
    train, val = MelodyDataset(tr, cfg, r.transpose), MelodyDataset(va, cfg)
    load_s = time.perf_counter() - t0
    # An epoch draws as many windows as there are (each in a random one of its transpositions).
    spe = math.ceil(len(tr) / r.batch_size)  # optimiser steps per epoch
    schedules = {"kl_weight": {"start": 0, "end": r.anneal_epochs * spe, "from": 0.0, "to": 1.0}} \
        if r.anneal_epochs else {}
    tcfg = TrainConfig(max_steps=epochs * spe, batch_size=r.batch_size, lr=lr, warmup_steps=0,
                       lr_schedule=r.lr_schedule, lr_decay=r.lr_decay, lr_decay_every=r.decay_epochs * spe,
                       weight_decay=0.0, grad_clip=0.0, eval_every=spe, eval_batches=0, log_every=max(1, spe // 4),
                       eval_batch_size=r.eval_batch_size, save_every=5 * spe, keep_last=1, seed=seed,
                       device="cpu", best_metric="val/elbo", restore_best=True, tensorboard=False,
                       early_stopping_metric="val/elbo" if r.patience else None,
                       early_stopping_patience=r.patience or 1, schedules=schedules, max_seconds=max_seconds)
    with seeded_torch(seed):
        net = MelodyVAE(cfg)

    last = {}

    def row_with_epoch(row):
        row["epoch"] = row["step"] / spe
        last.update({k: row[k] for k in ("train/loss", "lr") if k in row})
        if progress and "val/elbo" in row:
            print(f"epoch {row['epoch']:.0f}: train loss {last.get('train/loss', float('nan')):.4f}, val ELBO "
                  f"{row['val/elbo']:.4f}, onset accuracy {row['val/onset_accuracy']:.3f}, pitch accuracy "
                  f"{row['val/pitch_accuracy']:.3f}, KL {row['val/kl']:.3f}, lr {last.get('lr', lr):.2e}", flush=True)
        if on_row is not None:
            on_row(row)

    trainer = Trainer(net, tcfg, train, val, out_dir=out, progress=progress, on_row=row_with_epoch,
                      log=print if progress else (lambda s: None),
                      run_info={"data": str(data), "recipe": recipe, "voice": voice, "epochs": epochs,
                                "report": {k: v for k, v in report.to_dict().items() if k != "skipped"},
                                "skipped": report.skipped[:50]})
    if on_trainer:
        on_trainer(trainer)
    summary = trainer.fit()
    summary.update(steps_per_epoch=spe, epochs=trainer.step / spe, load_seconds=load_s,
                   train_windows=len(tr), val_windows=len(va), report=report.to_dict(), history=_epochs(out))
    return net.eval(), summary


def _epochs(out) -> list[dict]:
    """Validation rows of a run's metrics.csv: one per epoch."""
    import csv

    path = Path(out) / "metrics.csv"
    rows: dict[int, dict] = {}
    if path.exists():
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                if r["metric"].startswith("val/"):
                    rows.setdefault(int(r["step"]), {})[r["metric"]] = float(r["value"])
    return [{"step": s, **v} for s, v in sorted(rows.items())]


def notes_list(perf: Performance) -> list:
    """A flat list a Max patch can put into a clip: pitch, start, duration (s), velocity per note."""
    out: list = []
    for n in perf.notes:
        out += [int(n["pitch"]), round(float(n["onset"]), 4), round(float(n["offset"] - n["onset"]), 4),
                int(n["velocity"])]
    return out


class MelodySession:
    """One MelodyVAE and what a musician does with it. Thread-safe: training runs
    in the background while the other actions use the current model."""

    def __init__(self, model: Optional[MelodyVAE] = None, *, workdir: "str | os.PathLike | None" = None):
        self.model = model or MelodyVAE(MelodyVAEConfig())
        self.bender = Bender(self.model)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="tatumflow-melody-"))
        self.lock = threading.RLock()
        self._thread: Optional[threading.Thread] = None
        self._trainer: Optional[Trainer] = None
        self.state = {"state": "idle", "epoch": 0.0, "step": 0, "loss": None, "val_elbo": None, "lr": None,
                      "message": ""}
        self.listeners: list[Callable[[dict], None]] = []

    # ------------------------------------------------------------ training
    def train(self, data: str, *, epochs: int = 50, recipe: str = "new", voice: str = "mono", seed: int = 0,
              z_dim: Optional[int] = None) -> None:
        """Start training on ``data`` in the background; progress goes to ``listeners``."""
        with self.lock:
            if self._thread is not None and self._thread.is_alive():
                raise TatumFlowError("a training run is already going; send /stop first")
            from ..corpus import BUILTIN_CORPORA

            if not (Path(data).exists() or data in BUILTIN_CORPORA):
                raise TatumFlowError(f"{data}: no such file or folder, nor a built-in corpus")
            if epochs < 1:
                raise TatumFlowError(f"epochs must be >= 1, got {epochs}")
            if recipe not in RECIPES:
                raise TatumFlowError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
            over = {k: getattr(self.model.config, k) for k in ("z_dim", "hidden", "bars", "steps_per_beat")}
            if z_dim is not None:
                over["z_dim"] = int(z_dim)
            self.state.update(state="training", epoch=0.0, step=0, loss=None, val_elbo=None, lr=None, message="")
            out = self.workdir / f"run-{int(time.time() * 1000)}"
            self._thread = threading.Thread(target=self._train, args=(data, out, epochs, recipe, voice, seed, over),
                                            daemon=True)
            self._thread.start()

    def _train(self, data, out, epochs, recipe, voice, seed, over) -> None:
        def on_row(row):
            with self.lock:
                self.state["step"] = row["step"]
                if "train/loss" in row:
                    self.state.update(loss=row["train/loss"], lr=row["lr"])
                if "val/elbo" in row:
                    self.state["val_elbo"] = row["val/elbo"]
                self.state["epoch"] = round(row["epoch"], 3)
                snapshot = dict(self.state)
            for f in list(self.listeners):
                f(snapshot)

        def keep(trainer):
            self._trainer = trainer

        try:
            model, summary = train_melody(data, out, recipe=recipe, epochs=epochs, seed=seed, voice=voice, model=over,
                                          progress=False, on_row=on_row, on_trainer=keep)
            with self.lock:
                self._swap(model)
                self.state.update(state="stopped" if summary["stop_reason"] == "requested" else "done",
                                  message=f"{summary['stop_reason']} after {summary['epochs']:.1f} epochs")
        except Exception as exc:  # reported to the listeners; the session carries on
            with self.lock:
                self.state.update(state="failed", message=f"{type(exc).__name__}: {exc}")
        for f in list(self.listeners):
            f(dict(self.state))

    def stop(self) -> bool:
        """Ask a running training to stop after its current step (it keeps the best weights)."""
        t = self._trainer
        if self._thread is None or not self._thread.is_alive() or t is None:
            return False
        t.request_stop()
        return True

    def wait(self, timeout: Optional[float] = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict:
        with self.lock:
            return dict(self.state)

    # ------------------------------------------------------------ the model
    def _swap(self, model: MelodyVAE) -> None:
        self.model = model.eval()
        self.bender = Bender(self.model)

    def _out(self, path: Optional[str], stem: str) -> Path:
        return Path(path) if path else self.workdir / f"{stem}-{int(time.time() * 1000)}.mid"

    def encode(self, path: str) -> list[float]:
        with self.lock:
            return [round(float(v), 5) for v in encode(self.model, read_midi(path))]

    def generate(self, z: Optional[Sequence[float]] = None, *, threshold: float = 0.5, noise: float = 0.0,
                 seed: int = 0, out: Optional[str] = None, qpm: float = 120.0) -> tuple[Path, Performance]:
        """Decode pad coordinates ``z`` (or a sample of the prior) to a melody file."""
        with self.lock:
            d = self.model.config.z_dim
            g = torch.Generator().manual_seed(int(seed))
            if z is None or len(z) == 0:
                zz = torch.randn((1, d), generator=g)
            else:
                if len(z) != d:
                    raise TatumFlowError(f"this model's pad has {d} coordinates, got {len(z)}")
                zz = torch.tensor([list(map(float, z))])
            perf = decode(self.model, zz, threshold=threshold, noise=noise, generator=g, qpm=qpm)[0]
        return write_midi(perf, self._out(out, "generated"), qpm=qpm), perf

    def interpolate(self, a: str, b: str, steps: int = 5, *, threshold: float = 0.5, out: Optional[str] = None,
                    qpm: float = 120.0) -> tuple[Path, Performance]:
        with self.lock:
            _, mels = interpolate(self.model, read_midi(a), read_midi(b), steps, threshold=threshold, qpm=qpm)
            perf = concatenate(mels, self.model.config, qpm)
        return write_midi(perf, self._out(out, "interpolation"), qpm=qpm), perf

    def bend(self, amount: float, *, layers: Optional[Sequence[str]] = None, seed: int = 0) -> list[str]:
        with self.lock:
            return self.bender.bend(amount, layers=layers, seed=seed)

    def reset(self) -> None:
        with self.lock:
            self.bender.reset()

    def clear(self, seed: int = 0) -> None:
        """An untrained model of the same shape (no restart needed)."""
        with self.lock:
            self.bender.reset()
            self.model.reset_parameters(torch.Generator().manual_seed(int(seed)))

    def load(self, path_or_name: str) -> dict:
        from ..pretrained import load_model

        model, state = load_model(path_or_name)
        if not isinstance(model, MelodyVAE):
            raise TatumFlowError(f"{path_or_name}: a {state.get('family')} model, not a melody_vae")
        with self.lock:
            self._swap(model)
        return model.config.to_dict()

    def save(self, path: str) -> Path:
        """The current weights (bent or not) as a checkpoint folder: safetensors + JSON config."""
        with self.lock:
            return save_checkpoint(Path(path), model_state=self.model.state_dict(),
                                   state={**model_state(self.model), "run_info": {"saved_by": "melody session"}})


DEFAULT_MODEL = "melody_vae_folk_2d"

#: ``tatumflow melody`` options: (flag, argparse keywords)
CLI_OPTIONS = [
    ("verb", dict(choices=("train", "generate", "encode", "interpolate", "bend", "serve"))),
    ("inputs", dict(nargs="*", help="train: the melodies (folder, CSV, corpus name; default folk); "
                                    "encode: MIDI files; interpolate: two MIDI files")),
    ("--model", dict(help="checkpoint folder or shipped model name (default: melody_vae_folk_2d)")),
    ("--out", dict(help="output MIDI (generate, interpolate, bend) or run folder (train)")),
    ("--epochs", dict(type=arg_number(int, low=1), default=50)), ("--recipe", dict(default="new", choices=("new", "old"))),
    ("--voice", dict(default="mono", choices=("mono", "top"), help="monophonic files only, or top voices")),
    ("--z-dim", dict(type=arg_number(int, low=1, high=512), default=2, help="train: latent dimensions (2 for the pad)")),
    ("--z", dict(help="generate: pad coordinates, comma-separated (default: sample)")),
    ("--count", dict(type=arg_number(int, low=1, high=1000), default=1)),
    ("--threshold", dict(type=arg_number(float, low=0, high=1), default=0.5)),
    ("--noise", dict(type=arg_number(float, low=0), default=0.0)),
    ("--steps", dict(type=arg_number(int, low=2, high=1000), default=5, help="interpolate")),
    ("--amount", dict(type=arg_number(float, low=0), default=0.5, help="bend: noise scale relative to each weight's spread")),
    ("--layers", dict(help="bend: only these decoder layers, comma-separated (e.g. pitch,onset)")),
    ("--seed", dict(type=arg_number(int, low=0), default=0)),
    ("--qpm", dict(type=arg_number(float, low=1, high=2000), default=120.0)),
    ("--host", dict(default="127.0.0.1")), ("--port", dict(type=arg_number(int, low=0, high=65535), default=7400)),
    ("--reply-port", dict(type=arg_number(int, low=0, high=65535), default=7401))
]


def run_verb(verb: str, o: dict, *, echo: Callable[[str], None] = print) -> int:
    """``tatumflow melody VERB``: train, generate, encode, interpolate, bend, serve."""
    inputs = list(o.get("inputs") or [])
    if verb == "train":
        if len(inputs) > 1:
            raise TatumFlowError("melody train takes one source (a folder, CSV index or corpus name)")
        if o["z_dim"] < 1:
            raise TatumFlowError(f"--z-dim must be >= 1, got {o['z_dim']}")
        out = Path(o["out"] or "runs/melody_vae")
        if out.exists() and not out.is_dir():
            raise TatumFlowError(f"--out {out}: is a file; melody train writes a run folder")
        _, s = train_melody(inputs[0] if inputs else "folk", out, recipe=o["recipe"], epochs=o["epochs"],
                            seed=o["seed"], voice=o["voice"], model={"z_dim": o["z_dim"]})
        rep = s["report"]
        echo(f"{out}: {s['epochs']:.1f} epochs ({s['stop_reason']}) in {s['seconds']:.0f}s on {s['train_windows']:,} "
             f"training windows from {rep['used']} of {rep['files']} files; best val ELBO {s['best']:.4f}; "
             f"model {out / 'best'}")
        for k in rep["skipped"][:10]:
            echo(f"  skipped {k['file']}: {k['reason']}")
        if len(rep["skipped"]) > 10:
            echo(f"  ... and {len(rep['skipped']) - 10} more skipped files")
        return 0
    from ..pretrained import load_model

    model, _ = load_model(o["model"] or DEFAULT_MODEL)
    if not isinstance(model, MelodyVAE):
        raise TatumFlowError(f"{o['model']}: not a melody_vae model")
    session = MelodySession(model)
    if verb == "serve":
        from .osc import MelodyOSCServer

        server = MelodyOSCServer(session, host=o["host"], port=o["port"], reply_port=o["reply_port"], log=echo)
        echo(f"MelodyVAE OSC server on {server.address[0]}:{server.address[1]} (UDP); replies to port "
             f"{o['reply_port']}; Ctrl-C stops it")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.shutdown()
        return 0
    if verb == "encode":
        if not inputs:
            raise TatumFlowError("melody encode needs MIDI files")
        for f in inputs:
            echo(f"{f}: " + " ".join(f"{v:.4f}" for v in session.encode(f)))
        return 0
    if not o["out"]:
        raise TatumFlowError(f"melody {verb} needs --out FILE.mid")
    if Path(o["out"]).is_dir():
        raise TatumFlowError(f"--out {o['out']}: is a folder; melody {verb} writes a MIDI file")
    if verb == "interpolate":
        if len(inputs) != 2:
            raise TatumFlowError("melody interpolate needs two MIDI files")
        path, perf = session.interpolate(inputs[0], inputs[1], o["steps"], threshold=o["threshold"], out=o["out"],
                                         qpm=o["qpm"])
        echo(f"{path}: {o['steps']} steps, {len(perf)} notes")
        return 0
    if verb == "bend":
        layers = [x.strip() for x in o["layers"].split(",") if x.strip()] if o.get("layers") else None
        names = session.bend(o["amount"], layers=layers, seed=o["seed"])
        echo(f"bent {len(names)} decoder tensors by {o['amount']:g}")
    if o["count"] < 1 or not o["qpm"] > 0:
        raise TatumFlowError(f"--count must be >= 1 and --qpm > 0, got {o['count']} and {o['qpm']}")
    z = parse_z(o["z"], session.model.config.z_dim)[0].tolist() if o.get("z") else None
    mels = []
    for k in range(o["count"]):
        _, perf = session.generate(z, threshold=o["threshold"], noise=o["noise"], seed=o["seed"] + k,
                                   out=str(session.workdir / f"m{k}.mid"), qpm=o["qpm"])
        mels.append(perf)
    perf = concatenate(mels, session.model.config, o["qpm"])
    echo(f"{write_midi(perf, o['out'], qpm=o['qpm'])}: {len(mels)} melodies, {len(perf)} notes")
    return 0


__all__ = ["RECIPES", "Recipe", "train_melody", "MelodySession", "notes_list", "run_verb", "DEFAULT_MODEL"]
