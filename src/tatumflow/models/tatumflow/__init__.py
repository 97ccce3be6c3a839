"""TatumFlow: hierarchical latent diffusion over expressive piano tokens.

``model.py`` holds the config, presets and the network; ``generate.py`` every
generation mode; ``command.py`` the ``generate`` command's options and entry point;
``data.py`` how a run's config and datasets come from a token store."""

from ..protocol import Family
from .command import add_generate_options, generate_command
from .data import build_config, datasets
from .generate import MODES, GenerationPipeline, Inputs, Result, Sampling
from .model import PRESETS, TatumFlow, TatumFlowConfig, preset

FAMILY = Family(name="tatumflow", config_class=TatumFlowConfig, model_class=TatumFlow, build_config=build_config,
                datasets=datasets, modes=tuple(MODES), add_generate_options=add_generate_options,
                generate=generate_command, pipeline=GenerationPipeline)

__all__ = ["FAMILY", "TatumFlow", "TatumFlowConfig", "PRESETS", "preset", "GenerationPipeline", "Sampling",
           "Result", "Inputs", "MODES"]
