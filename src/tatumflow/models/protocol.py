"""What a model family provides: the one seam between a family and the rest.

The Trainer (``training/``) sees only :class:`StepOutput` and the model's
``training_step`` / ``validation_step``; the CLI, the demo and (later) the studio
see only a :class:`Family`. This module imports nothing from the package above
it, so ``training/`` can depend on it without depending on any family.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import torch


@dataclass
class StepOutput:
    """What ``training_step(batch)`` and ``validation_step(batch)`` return."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    n_items: int = 0  # tokens or notes in the batch, for throughput


@dataclass(frozen=True)
class Family:
    """A model family, as ``models/registry.py`` lists it.

    * ``config_class``: a dataclass with ``to_dict()`` and ``from_dict(d, tokenizer=...)``;
      its ``tokenizer`` attribute (a ``TokenizerConfig`` or ``None``) is what the
      checkpoint stores once, typed, next to the model config.
    * ``model_class``: an ``nn.Module`` built from the config, with ``family``,
      ``config``, ``scalars`` (values the Trainer's schedules set), ``scalar_names``
      (the ones it reads), ``training_step`` and ``validation_step``.
    * ``build_config(model_section, store)``: the config of a run from the YAML
      ``model`` section (without ``family``) and the token store it trains on.
    * ``datasets(store, config, data_section, seed)``: ``(train, val)``.
    * ``modes``: what ``generate --mode`` accepts for this family.
    * ``add_generate_options(group)``: the family's own ``generate`` options.
    * ``generate(model, options, device=..., echo=...)``: the generator entry point:
      reads the parsed options (a mapping of option name to value), writes the
      files, returns their paths.
    * ``pipeline(model, steps=None)``: what the scorecard drives (``None``: not
      scored; ``steps``: denoising steps, for families that denoise): an
      object with a method per mode of ``modes`` it can run (``continuation``,
      ``unconditional``, ``style_transfer``, ``edit_harmony``, ``interpolate``,
      ``improvise``; each returns results with a ``performance``, or a list of
      them) and ``bits_per_note(pieces, starts)``.
    """

    name: str
    config_class: type
    model_class: type
    build_config: Callable[[Mapping[str, Any], Any], Any]
    datasets: Callable[[Any, Any, Mapping[str, Any], int], tuple]
    modes: tuple[str, ...]
    add_generate_options: Callable[[argparse._ArgumentGroup], None]
    generate: Callable[..., list]
    pipeline: Optional[Callable[[Any], Any]] = None
