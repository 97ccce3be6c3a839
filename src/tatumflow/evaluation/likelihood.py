"""Bits per note: one likelihood measure for models with different representations.

Definition. Bits per note is the total negative log-likelihood, in bits, that a
model assigns to held-out music, divided by the number of notes. The music is
taken at the performance tokenizer's resolution: onset and duration on the
10 ms grid, pitch exactly. Velocity is excluded from the comparison: models
that predict it (token models) report it separately, so that models without a
velocity head (the Music RNN) are not favoured for leaving it out.

* Token models: the sum of the NLL of every NOTE_ON and NOTE_OFF (or DURATION)
  token and every TIME_SHIFT token, over the notes: each note pays for its own
  tokens plus its share of the time-shift tokens. VELOCITY token NLL is
  reported apart (``velocity_bits_per_note``). See :func:`token_bits_per_note`.
* Music RNN (note-level): pitch NLL from its softmax, plus the probability of
  the true step and duration 10 ms bins under its Laplace densities in
  log-time (``tatumflow.models.music_rnn.note_bits``).

Both count the bits needed to transmit the same information: which pitch, when
it starts and how long it lasts, each at 10 ms resolution.
"""

from __future__ import annotations

import math

import numpy as np

from ..tokenizer.vocab import DURATION, NOTE_OFF, NOTE_ON, SHIFT, VELOCITY


def token_bits_per_note(nll_nats: np.ndarray, targets: np.ndarray, tokenizer) -> dict[str, float]:
    """Bits per note of a token model from per-token NLL (nats) of the ``targets``.

    ``nll_nats[i]`` is the model's NLL of ``targets[i]`` given the tokens before it.
    """
    nll_nats = np.asarray(nll_nats, dtype=np.float64).reshape(-1)
    t = tokenizer.vocab.type_of[np.asarray(targets).reshape(-1)]
    notes = int((t == NOTE_ON).sum())
    timing = np.isin(t, (NOTE_ON, NOTE_OFF, DURATION, SHIFT))
    bits = nll_nats / math.log(2)
    return {
        "notes": notes,
        "bits_per_note": float(bits[timing].sum() / max(notes, 1)),
        "velocity_bits_per_note": float(bits[t == VELOCITY].sum() / max(notes, 1)),
    }
