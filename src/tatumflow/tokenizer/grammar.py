"""Which token may follow which, as data.

The grammar is a boolean matrix over token *types* (see :mod:`.vocab`). It is
used for constrained decoding (mask the logits of disallowed next tokens) and
by the grammar-error metric. Constraints that need state (a NOTE_OFF only for
a sounding pitch) are checked by the decoder, which counts them.
"""

from __future__ import annotations

import numpy as np

from .vocab import (
    DURATION, EOS, MASK, NOTE_OFF, NOTE_ON, PAD, SEG, SHIFT, SOS, SUSTAIN_OFF, SUSTAIN_ON,
    TYPE_NAMES, VELOCITY, Vocabulary,
)


class Grammar:
    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        cfg = vocab.config
        n = len(TYPE_NAMES)
        allowed = np.zeros((n, n), dtype=bool)
        # Tokens that may start a new event after a complete one.
        follow = [SHIFT, VELOCITY, SEG, EOS]
        if cfg.release == "note_off":
            follow.append(NOTE_OFF)
        if cfg.sustain:
            follow += [SUSTAIN_ON, SUSTAIN_OFF]
        complete = [SOS, SEG, SHIFT, SUSTAIN_ON, SUSTAIN_OFF]
        complete.append(NOTE_ON if cfg.release == "note_off" else DURATION)
        if cfg.release == "note_off":
            complete.append(NOTE_OFF)
        for a in complete:
            allowed[a, follow] = True
        allowed[VELOCITY, NOTE_ON] = True
        if cfg.release == "duration":
            allowed[NOTE_ON, DURATION] = True
            allowed[DURATION, DURATION] = True
        allowed[EOS, PAD] = True
        allowed[PAD, PAD] = True
        # Types absent from this vocabulary can neither follow nor be followed.
        present = np.zeros(n, dtype=bool)
        present[np.unique(vocab.type_of)] = True
        allowed &= present[:, None] & present[None, :]
        allowed[:, MASK] = False  # MASK is an input-only token
        self.type_transitions = allowed
        self.allowed_first = np.array([t in (SOS,) for t in range(n)])

    def allowed_next(self, prev_id: int) -> np.ndarray:
        """Boolean mask (V,) of ids allowed right after ``prev_id``."""
        t = self.vocab.type_of[prev_id]
        return self.type_transitions[t][self.vocab.type_of]

    def token_matrix(self) -> np.ndarray:
        """The full (V, V) boolean transition matrix over ids."""
        t = self.vocab.type_of
        return self.type_transitions[t[:, None], t[None, :]]

    def violations(self, ids: np.ndarray) -> np.ndarray:
        """Positions i >= 1 where ``ids[i]`` may not follow ``ids[i-1]``.

        Ids outside the vocabulary count as violations.
        """
        ids = np.asarray(ids).reshape(-1).astype(np.int64)
        if ids.size < 2:
            return np.empty(0, dtype=np.int64)
        V = self.vocab.size
        valid = (ids >= 0) & (ids < V)
        types = np.where(valid, self.vocab.type_of[np.clip(ids, 0, V - 1)], -1)
        a, b = types[:-1], types[1:]
        ok = (a >= 0) & (b >= 0)
        ok[ok] = self.type_transitions[a[ok], b[ok]]
        return np.nonzero(~ok)[0] + 1
