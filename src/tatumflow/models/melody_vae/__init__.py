"""MelodyVAE (seed 003): a melody variational autoencoder with a 2-D pad, pattern
encoding, interpolation and model bending; ``server/melody.py`` drives it over OSC."""

from pathlib import Path

import torch

from ...errors import TatumFlowError
from ...utils import arg_number
from ..protocol import Family
from .data import LoadReport, MelodyDataset, MelodyWindows, build_config, datasets, load_melodies, melody_line
from .generate import Bender, concatenate, decode, encode, interpolate, sample, slerp
from .model import MelodyVAE, MelodyVAEConfig


def add_generate_options(g) -> None:
    g.add_argument("--z", help="pad coordinates to decode, comma-separated (default: samples from the prior)")
    g.add_argument("--count", type=arg_number(int, low=1, high=1000), default=4, help="melodies to sample, written one after another")
    g.add_argument("--threshold", type=arg_number(float, low=0, high=1), default=0.5, help="onset probability that makes a note")
    g.add_argument("--noise", type=arg_number(float, low=0), default=0.0, help="Gaussian noise added to the coordinates")
    g.add_argument("--qpm", type=arg_number(float, low=1, high=2000), default=120.0, help="tempo of the written MIDI")


def parse_z(text: str, z_dim: int) -> torch.Tensor:
    """``"0.5,-1"`` -> (1, z_dim) pad coordinates, or a one-line error."""
    try:
        z = [float(v) for v in str(text).split(",")]
    except ValueError:
        raise TatumFlowError(f"--z expects comma-separated numbers, got {text!r}") from None
    if len(z) != z_dim:
        raise TatumFlowError(f"--z: this model's pad has {z_dim} coordinates, got {len(z)}")
    return torch.tensor([z])


def generate_command(model: MelodyVAE, opts: dict, *, device="cpu", echo=print) -> list:
    """``tatumflow generate`` for a MelodyVAE checkpoint: decode ``--z`` or sample ``--count``."""
    from ...midi import write_midi

    if opts.get("mode") not in (None, "sample"):
        raise TatumFlowError(f"a melody_vae model samples melodies (--mode sample), not --mode {opts['mode']}")
    qpm = opts["qpm"]
    if not qpm > 0:
        raise TatumFlowError(f"--qpm must be > 0, got {qpm}")
    if opts.get("z"):
        z = parse_z(opts["z"], model.config.z_dim)
        melodies = decode(model, z, threshold=opts["threshold"], noise=opts["noise"], qpm=qpm,
                          generator=torch.Generator().manual_seed(opts["seed"]))
    else:
        z, melodies = sample(model, opts["count"], threshold=opts["threshold"], noise=opts["noise"],
                             seed=opts["seed"], qpm=qpm)
    perf = concatenate(melodies, model.config, qpm)
    path = write_midi(perf, opts["out"], qpm=qpm)
    echo(f"{path}: {len(melodies)} melodies, {len(perf)} notes; z = "
         + "; ".join(",".join(f"{v:.3f}" for v in row) for row in z.tolist()))
    return [Path(path)]


FAMILY = Family(name="melody_vae", config_class=MelodyVAEConfig, model_class=MelodyVAE, build_config=build_config,
                datasets=datasets, modes=("sample",), add_generate_options=add_generate_options,
                generate=generate_command)

__all__ = ["FAMILY", "MelodyVAE", "MelodyVAEConfig", "MelodyWindows", "MelodyDataset", "LoadReport",
           "load_melodies", "melody_line", "decode", "sample", "encode", "interpolate", "slerp", "concatenate",
           "Bender"]
