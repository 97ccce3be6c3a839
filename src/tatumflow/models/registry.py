"""The model families: an explicit dict, family name -> :class:`~.protocol.Family`.

Adding a family is one folder under ``models/`` and one line here."""

from __future__ import annotations

from ..errors import TatumFlowError
from .melody_vae import FAMILY as MELODY_VAE
from .music_rnn import FAMILY as MUSIC_RNN
from .protocol import Family
from .tatumflow import FAMILY as TATUMFLOW

FAMILIES: dict[str, Family] = {
    TATUMFLOW.name: TATUMFLOW,
    MUSIC_RNN.name: MUSIC_RNN,
    MELODY_VAE.name: MELODY_VAE,
}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise TatumFlowError(f"unknown model family {name!r} (known: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[name]
