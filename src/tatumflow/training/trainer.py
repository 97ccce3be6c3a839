"""The one Trainer every TatumFlow model trains through.

Models implement ``training_step(batch) -> StepOutput`` and
``validation_step(batch) -> StepOutput`` (:mod:`tatumflow.models.protocol`),
expose ``family`` and ``config`` (a dataclass with ``to_dict``), and may read
scalars the Trainer sets in ``model.scalars`` (KL weight, ...), named in
``model.scalar_names``. Datasets are indexable and return dicts of tensors (or
build a whole batch with ``batch(indices)``, equal to collating the items); they
may implement ``set_scalar(name, value)`` for curricula, named in
``scalar_names``. A schedule for a name nobody reads is an error.

Batches are drawn deterministically: step ``s`` uses indices from
``numpy.random.default_rng([seed, s])``, so a resumed run sees exactly the
batches an uninterrupted run would, and with the RNG states restored from the
checkpoint, produces bit-identical weights on the CPU.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import default_collate

from ..errors import TatumFlowError
from ..models.protocol import StepOutput
from ..utils import atomic_path, select_device
from .checkpoint import (latest_checkpoint, load_checkpoint, model_state, prune_checkpoints, recover_run_dir,
                         save_checkpoint, set_rng_state)
from .config import ConfigError, TrainConfig
from .ema import EMA


class _TrainingStep(nn.Module):
    """Runs ``model.training_step`` as a forward pass, so DDP and torch.compile
    wrappers see the computation (plain outputs: loss, metrics, item count)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch):
        out = self.model.training_step(batch)
        return out.loss, out.metrics, out.n_items


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on biases, norms and embeddings (any tensor
    with fewer than 2 dims, and every Embedding weight)."""
    no_decay = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, other = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (other if p.dim() < 2 or id(p) in no_decay else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` at ``max_steps``
    (or exponential steps: ``lr * lr_decay ** (steps after warm-up // lr_decay_every)``, or constant)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "exponential":
        return cfg.lr * cfg.lr_decay ** ((step - cfg.warmup_steps) // cfg.lr_decay_every)
    t = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    t = min(max(t, 0.0), 1.0)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def ramp(step: int, spec: dict) -> float:
    """A scalar schedule: ``from`` before ``start``, ``to`` after ``end``, linear between."""
    start, end = int(spec.get("start", 0)), int(spec.get("end", 1))
    a, b = float(spec["from"]), float(spec["to"])
    t = min(max((step - start) / max(1, end - start), 0.0), 1.0)
    return a + (b - a) * t


class Trainer:
    def __init__(self, model: nn.Module, config: TrainConfig, train_data, val_data=None, *,
                 out_dir: "str | os.PathLike", run_info: Optional[dict] = None,
                 progress: bool = True, log: Callable[[str], None] = print,
                 on_row: Optional[Callable[[dict], None]] = None,
                 evaluator: Optional[Callable[[nn.Module], dict]] = None):
        """``on_row(row)`` receives every logged row (step, losses, lr, validation
        metrics) as it is written: progress for a caller that is not a terminal.
        ``evaluator(model)`` (called in eval mode, EMA weights swapped in) returns
        metrics of a whole validation set that no per-batch mean gives (e.g. a
        Pearson r over all its items); they join the validation metrics as
        ``val/<name>``, so ``best_metric`` and early stopping can use them."""
        self.cfg = config
        self.out = Path(out_dir)
        self.train_data, self.val_data = train_data, val_data
        self.run_info = run_info or {}
        self.progress, self.log, self.on_row, self.evaluator = progress, log, on_row, evaluator
        self._stop = False
        self.world, self.rank = 1, 0
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            self.world, self.rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
        if config.batch_size % (config.grad_accum * self.world):
            raise ConfigError(f"batch_size {config.batch_size} must divide by grad_accum x world size "
                              f"({config.grad_accum} x {self.world})")
        try:
            self.device = select_device(config.device)
        except TatumFlowError as exc:
            raise ConfigError(str(exc)) from None
        if self.device.type == "cuda" and self.device.index is None:  # under torchrun: this process's GPU
            self.device = torch.device("cuda", torch.cuda.current_device())
        self._check_schedules(model, train_data)
        if config.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("fp16 needs CUDA; use bf16 on the CPU")
        self.model = model.to(self.device)
        if config.gradient_checkpointing:
            if not hasattr(model, "set_gradient_checkpointing"):
                raise ConfigError(f"{type(model).__name__} does not support gradient checkpointing")
            model.set_gradient_checkpointing(True)
        self.ema = EMA(model, config.ema_decay) if config.ema_decay > 0 else None
        self.optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr,
                                           betas=config.betas)
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.forward_model = None  # plain model.training_step
        if self.world > 1 or config.compile:
            wrapped: nn.Module = _TrainingStep(model)
            if self.world > 1:
                wrapped = nn.parallel.DistributedDataParallel(
                    wrapped, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            self.forward_model = torch.compile(wrapped) if config.compile else wrapped
        self.step = 0
        self.best = None
        self.bad_evals = 0
        self.trained_seconds = 0.0  # training time up to now, over every session of the run
        self._clock: Optional[tuple[float, float]] = None  # (seconds before this fit, its start) while fitting
        self.history: list[dict] = []
        self._tb = None

    # ------------------------------------------------------------ data
    def _batch(self, data, indices) -> dict:
        # A dataset may build a whole batch at once (vectorised), else items are collated.
        batch = data.batch(indices) if hasattr(data, "batch") else default_collate([data[int(i)] for i in indices])
        return {k: (v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}

    def _step_indices(self, step: int) -> np.ndarray:
        n = len(self.train_data)
        idx = np.random.default_rng([self.cfg.seed, step]).integers(0, n, self.cfg.batch_size)
        per_rank = self.cfg.batch_size // self.world
        return idx[self.rank * per_rank : (self.rank + 1) * per_rank]

    def _autocast(self):
        if self.cfg.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _check_schedules(self, model, data) -> None:
        for name, spec in self.cfg.schedules.items():
            target = spec.get("target", "model")
            if target not in ("model", "data"):
                raise ConfigError(f"schedule {name!r}: target must be model or data, got {target!r}")
            obj = model if target == "model" else data
            known = tuple(getattr(obj, "scalar_names", ()))
            if name not in known or (target == "data" and not hasattr(data, "set_scalar")):
                raise ConfigError(f"schedule {name!r}: the {target} ({type(obj).__name__}) reads no scalar of that "
                                  f"name (it reads: {', '.join(known) or 'none'})")

    def request_stop(self) -> None:
        """Stop after the current step (from another thread): checkpoint, then return."""
        self._stop = True

    def _apply_schedules(self) -> dict[str, float]:
        values = {}
        for name, spec in self.cfg.schedules.items():
            v = ramp(self.step, spec)
            if spec.get("target", "model") == "data":
                self.train_data.set_scalar(name, v)
            else:
                self.model.scalars[name] = v
            values[f"sched/{name}"] = v
        return values

    # ------------------------------------------------------------ loop
    def fit(self, resume: "bool | str | os.PathLike" = False, *, stop_after: Optional[int] = None) -> dict:
        """Train to ``max_steps`` (or ``stop_after`` more steps, then checkpoint: an
        interruption that a later ``fit(resume=True)`` continues exactly)."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed + self.rank)
        if self.rank == 0:
            for what in recover_run_dir(self.out):  # a crash inside a checkpoint write
                self.log(f"{self.out}: {what}")
        if resume:
            ckpt = latest_checkpoint(self.out) if resume is True else Path(resume)
            if ckpt is not None:
                self.load(ckpt)
                self.log(f"resumed from {ckpt} at step {self.step}")
        self._trim_metrics()
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, initial=self.step, desc="train", unit="step", mininterval=1.0,
                   disable=not self.progress or self.rank != 0)
        t_start = time.perf_counter()
        self._clock = (self.trained_seconds, t_start)
        first_step = self.step
        window_items, window_t = 0, time.perf_counter()
        micro = cfg.batch_size // (cfg.grad_accum * self.world)
        stop_reason = "max_steps"
        last = cfg.max_steps if stop_after is None else min(cfg.max_steps, self.step + stop_after)
        self.model.train()
        while self.step < last:
            sched = self._apply_schedules()
            lr = lr_at(self.step, cfg)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            idx = self._step_indices(self.step)
            loss_sum, metrics_sum, items = 0.0, {}, 0
            for m in range(cfg.grad_accum):
                batch = self._batch(self.train_data, idx[m * micro : (m + 1) * micro])
                sync = m == cfg.grad_accum - 1 or self.world == 1
                ctx = contextlib.nullcontext() if sync else self._ddp().no_sync()
                with ctx, self._autocast():
                    out = self._training_step(batch)
                    loss = out.loss / cfg.grad_accum
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                else:
                    loss.backward()
                loss_sum += float(loss.detach())
                items += out.n_items
                for k, v in out.metrics.items():
                    metrics_sum[k] = metrics_sum.get(k, 0.0) + float(v) / cfg.grad_accum
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            gnorm = (torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                     if cfg.grad_clip > 0 else torch.tensor(float("nan")))
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.ema is not None:
                self.ema.update(self.model)
            loss_sum = self._mean_over_ranks(loss_sum)
            self.step += 1
            window_items += items * self.world
            row = {"step": self.step, "train/loss": loss_sum, "lr": lr, "grad_norm": float(gnorm), **sched,
                   **{f"train/{k}": v for k, v in metrics_sum.items()}}
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                dt = time.perf_counter() - window_t
                row["items_per_s"] = window_items / max(dt, 1e-9)
                window_items, window_t = 0, time.perf_counter()
                self._log_row(row)
                bar.set_postfix(loss=f"{loss_sum:.3f}", lr=f"{lr:.2e}", items_s=f"{row['items_per_s']:.0f}")
            self.history.append({"step": self.step, "loss": loss_sum})
            bar.update(1)
            if ((self.val_data is not None or self.evaluator is not None)
                    and (self.step % cfg.eval_every == 0 or self.step == cfg.max_steps)):
                metrics = self.evaluate()
                self._log_row({"step": self.step, **metrics})
                if self._track_best(metrics):
                    self.save("best")
                if self._should_stop(metrics):
                    stop_reason = "early_stopping"
                    break
            if self.step % cfg.save_every == 0:
                self.save()
            if cfg.max_seconds and time.perf_counter() - t_start > cfg.max_seconds:
                stop_reason = "max_seconds"
                break
            if self._stop:
                stop_reason = "requested"
                break
        if self.step == last and last < cfg.max_steps:
            stop_reason = "stop_after"
        bar.close()
        self.trained_seconds = self._elapsed()
        self._clock = None
        final = self.save()
        if cfg.restore_best and (self.out / "best").exists():
            self._restore_best()
        self._close_logs()
        seconds = time.perf_counter() - t_start
        if self.rank == 0:
            self._record_session(first_step, seconds, stop_reason)
        return {"steps": self.step, "stop_reason": stop_reason, "seconds": seconds,
                "trained_seconds": self.trained_seconds, "checkpoint": str(final), "best": self.best}

    def _record_session(self, first_step: int, seconds: float, stop_reason: str) -> None:
        """Append this ``fit`` to ``sessions.json``: steps, wall time and hardware of every
        session of the run (a resumed run has several), what a model card reports."""
        import platform

        from ..utils import write_json_atomic

        path = self.out / "sessions.json"
        sessions = json.loads(path.read_text()) if path.exists() else []
        dev = self.device
        hardware = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                    else f"{platform.machine()} CPU, {torch.get_num_threads()} threads")
        sessions.append({"from_step": first_step, "to_step": self.step, "seconds": round(seconds, 1),
                         "stop_reason": stop_reason, "hardware": hardware, "world_size": self.world,
                         "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        write_json_atomic(path, sessions)

    def _training_step(self, batch) -> StepOutput:
        if self.forward_model is None:
            return self.model.training_step(batch)
        loss, metrics, n = self.forward_model(batch)
        return StepOutput(loss, metrics, n)

    def _ddp(self) -> nn.parallel.DistributedDataParallel:
        m = self.forward_model
        return getattr(m, "_orig_mod", m)

    def _mean_over_ranks(self, x: float) -> float:
        if self.world == 1:
            return x
        t = torch.tensor([x], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def _restore_best(self) -> None:
        """The best evaluated weights into the model (and its EMA), e.g. after early stopping."""
        ck = load_checkpoint(self.out / "best")
        if self.ema is not None and ck["ema"] is not None:
            self.ema.load_state_dict(ck["ema"])
            self.model.load_state_dict(ck["ema"], strict=False)
        else:
            self.model.load_state_dict(ck["model"])
        self.log(f"restored the best weights ({self.cfg.best_metric} {self.best:.4g})")

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean validation metrics (EMA weights if any) over ``eval_batches`` fixed
        batches, or with ``eval_batches=0`` over the whole validation set in order
        (weighted by batch size); then the ``evaluator``'s whole-set metrics."""
        self.model.eval()
        ctx = self.ema.swapped_in(self.model) if self.ema is not None else contextlib.nullcontext()
        out: dict[str, float] = {}
        with ctx:
            if self.val_data is not None:
                out.update(self._batch_metrics())
            if self.evaluator is not None:
                out.update({f"val/{k}": float(v) for k, v in self.evaluator(self.model).items()})
        self.model.train()
        return out

    def _batch_metrics(self) -> dict[str, float]:
        cfg = self.cfg
        n = len(self.val_data)
        per = cfg.eval_batch_size or max(1, cfg.batch_size // cfg.grad_accum)
        if cfg.eval_batches == 0:
            idx = [np.arange(i, min(i + per, n)) for i in range(0, n, per)]
        else:
            rng = np.random.default_rng([cfg.seed, 10**9])  # the same batches at every evaluation
            idx = list(rng.integers(0, n, (cfg.eval_batches, per)))
        sums: dict[str, float] = {}
        for b in idx:
            with self._autocast():
                out = self.model.validation_step(self._batch(self.val_data, b))
            w = len(b) / per  # a short last batch counts for what it holds
            sums["loss"] = sums.get("loss", 0.0) + w * float(out.loss)
            for k, v in out.metrics.items():
                sums[k] = sums.get(k, 0.0) + w * float(v)
        total = sum(len(b) for b in idx) / per
        return {f"val/{k}": v / total for k, v in sums.items()}

    def _track_best(self, metrics: dict) -> bool:
        key = self.cfg.best_metric
        if key not in metrics:
            return False
        v = metrics[key]
        better = self.best is None or (v < self.best if self.cfg.early_stopping_mode == "min" else v > self.best)
        if better:
            self.best = v
        return better

    def _should_stop(self, metrics: dict) -> bool:
        key = self.cfg.early_stopping_metric
        if not key:
            return False
        if key not in metrics:
            raise ConfigError(f"early_stopping_metric {key!r} is not among {sorted(metrics)}")
        v = metrics[key]
        ref = getattr(self, "_es_best", None)
        improved = ref is None or (v < ref if self.cfg.early_stopping_mode == "min" else v > ref)
        if improved:
            self._es_best, self.bad_evals = v, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.cfg.early_stopping_patience

    # ------------------------------------------------------------ logs
    def _trim_metrics(self) -> None:
        """Keep only ``metrics.csv`` rows up to the current step: a resumed run logs
        the later steps again (no duplicate rows), a fresh run starts a fresh log."""
        path = self.out / "metrics.csv"
        if self.rank != 0 or not path.exists():
            return
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        # a row torn by a kill mid-append has fewer than 3 cells: dropped with the rows after the step
        keep = [r for r in rows[1:] if len(r) == 3 and r[0].isdigit() and int(r[0]) <= self.step]
        if len(keep) == len(rows) - 1:
            return
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows([["step", "metric", "value"], *keep])

    def _log_row(self, row: dict) -> None:
        if self.rank != 0:
            return
        if self.on_row is not None:
            self.on_row(dict(row))
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(["step", "metric", "value"])
            for k, v in row.items():
                if k != "step":
                    w.writerow([row["step"], k, f"{v:.6g}"])
        if self.cfg.tensorboard:
            if self._tb is None:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError:
                    self.log("tensorboard is not installed; logging to metrics.csv only")
                    self.cfg.tensorboard = False
                    return
                self._tb = SummaryWriter(str(self.out / "tb"), purge_step=self.step + 1 if self.step else None)
            for k, v in row.items():
                if k != "step":
                    self._tb.add_scalar(k, v, row["step"])

    def _close_logs(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    # ------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return {
            **model_state(self.model),
            "train_config": self.cfg.to_dict(),
            "run_info": self.run_info,
            "trainer": {"step": self.step, "best": self.best, "bad_evals": self.bad_evals,
                        "es_best": getattr(self, "_es_best", None), "seconds": self._elapsed()},
        }

    def _elapsed(self) -> float:
        """Seconds trained up to now (every session: a resumed run counts its earlier ones)."""
        if self._clock is None:
            return self.trained_seconds
        before, start = self._clock
        return before + time.perf_counter() - start

    def save(self, tag: Optional[str] = None) -> Path:
        """Checkpoint to ``out/step-NNNNNNN`` (or ``out/<tag>``); keeps the last N steps."""
        path = self.out / (tag or f"step-{self.step:07d}")
        if self.rank == 0:
            save_checkpoint(path, model_state=self.model.state_dict(), state=self.state(),
                            ema_state=self.ema.state_dict() if self.ema else None,
                            optimizer_state=self.optimizer.state_dict())
            if tag is None:
                prune_checkpoints(self.out, self.cfg.keep_last)
        if self.world > 1:
            torch.distributed.barrier()
        return path

    def load(self, path: "str | os.PathLike") -> None:
        ck = load_checkpoint(path)
        self.model.load_state_dict(ck["model"])
        if self.ema is not None and ck["ema"] is not None:
            self.ema.load_state_dict(ck["ema"])
        if ck["optimizer"] is not None:
            self.optimizer.load_state_dict(ck["optimizer"])
            set_rng_state(*ck["rng"])
        tr = ck["state"]["trainer"]
        self.step, self.best, self.bad_evals = tr["step"], tr["best"], tr["bad_evals"]
        if tr.get("es_best") is not None:
            self._es_best = tr["es_best"]
        self.trained_seconds = float(tr.get("seconds", 0.0))
