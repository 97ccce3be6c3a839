"""The vocabulary: named, contiguous blocks of ids derived from a config."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import TokenizerConfig

SPECIALS = ("PAD", "SOS", "EOS", "MASK", "SEG")

# Token types: every id belongs to exactly one. The grammar is written over types.
PAD, SOS, EOS, MASK, SEG, SHIFT, VELOCITY, NOTE_ON, NOTE_OFF, DURATION, SUSTAIN_ON, SUSTAIN_OFF = range(12)
TYPE_NAMES = (
    "PAD", "SOS", "EOS", "MASK", "SEG", "TIME_SHIFT", "VELOCITY", "NOTE_ON",
    "NOTE_OFF", "DURATION", "SUSTAIN_ON", "SUSTAIN_OFF",
)


@dataclass(frozen=True)
class Block:
    name: str
    start: int
    size: int

    @property
    def stop(self) -> int:
        return self.start + self.size

    def __contains__(self, token_id: int) -> bool:
        return self.start <= token_id < self.stop


class Vocabulary:
    """Id layout of a tokenizer config.

    Blocks, in order: specials (PAD=0, SOS, EOS, MASK, SEG), TIME_SHIFT
    (1..max_shift_steps steps), NOTE_ON (pitch_min..pitch_max), then NOTE_OFF
    or DURATION, VELOCITY bins, and SUSTAIN_ON/SUSTAIN_OFF when enabled.
    """

    def __init__(self, config: TokenizerConfig):
        self.config = c = config
        n_pitch = c.pitch_max - c.pitch_min + 1
        blocks = []
        pos = 0

        def add(name: str, size: int) -> Block:
            nonlocal pos
            b = Block(name, pos, size)
            blocks.append(b)
            pos += size
            return b

        self.specials = add("SPECIAL", len(SPECIALS))
        self.shift = add("TIME_SHIFT", c.max_shift_steps)
        self.note_on = add("NOTE_ON", n_pitch)
        if c.release == "note_off":
            self.note_off: Block | None = add("NOTE_OFF", n_pitch)
            self.duration: Block | None = None
        else:
            self.note_off = None
            self.duration = add("DURATION", c.max_duration_steps)
        self.velocity = add("VELOCITY", c.velocity_bins)
        self.sustain = add("SUSTAIN", 2) if c.sustain else None
        self.blocks: tuple[Block, ...] = tuple(blocks)
        self.size = pos
        self.pad_id, self.sos_id, self.eos_id, self.mask_id, self.seg_id = range(5)

        # Per-id lookup tables (vectorised encode/decode/grammar use these).
        self.type_of = np.empty(self.size, dtype=np.int8)
        self.type_of[: len(SPECIALS)] = np.arange(len(SPECIALS))
        self.type_of[self.shift.start : self.shift.stop] = SHIFT
        self.type_of[self.note_on.start : self.note_on.stop] = NOTE_ON
        if self.note_off is not None:
            self.type_of[self.note_off.start : self.note_off.stop] = NOTE_OFF
        if self.duration is not None:
            self.type_of[self.duration.start : self.duration.stop] = DURATION
        self.type_of[self.velocity.start : self.velocity.stop] = VELOCITY
        if self.sustain is not None:
            self.type_of[self.sustain.start] = SUSTAIN_ON
            self.type_of[self.sustain.start + 1] = SUSTAIN_OFF
        # Numeric value carried by each id: steps for shifts/durations, pitch, bin.
        self.value_of = np.zeros(self.size, dtype=np.int32)
        self.value_of[self.shift.start : self.shift.stop] = np.arange(1, c.max_shift_steps + 1)
        self.value_of[self.note_on.start : self.note_on.stop] = np.arange(c.pitch_min, c.pitch_max + 1)
        if self.note_off is not None:
            self.value_of[self.note_off.start : self.note_off.stop] = np.arange(
                c.pitch_min, c.pitch_max + 1
            )
        if self.duration is not None:
            self.value_of[self.duration.start : self.duration.stop] = np.arange(
                1, c.max_duration_steps + 1
            )
        self.value_of[self.velocity.start : self.velocity.stop] = np.arange(c.velocity_bins)

    def __len__(self) -> int:
        return self.size

    @property
    def sustain_on_id(self) -> int:
        if self.sustain is None:
            raise KeyError("this tokenizer config has no sustain tokens")
        return self.sustain.start

    @property
    def sustain_off_id(self) -> int:
        return self.sustain_on_id + 1

    def token_name(self, token_id: int) -> str:
        token_id = int(token_id)
        if not 0 <= token_id < self.size:
            return f"<INVALID:{token_id}>"
        t = int(self.type_of[token_id])
        v = int(self.value_of[token_id])
        ms = self.config.time_step_ms
        if t < len(SPECIALS):
            return SPECIALS[t]
        if t in (SHIFT, DURATION):
            return f"{TYPE_NAMES[t]}_{v * ms}ms"
        if t in (SUSTAIN_ON, SUSTAIN_OFF):
            return TYPE_NAMES[t]
        return f"{TYPE_NAMES[t]}_{v}"

    def token_id(self, name: str) -> int:
        """Inverse of :meth:`token_name`."""
        if name in SPECIALS:
            return SPECIALS.index(name)
        if name in ("SUSTAIN_ON", "SUSTAIN_OFF"):
            return self.sustain_on_id + (name == "SUSTAIN_OFF")
        head, _, val = name.rpartition("_")
        if val.endswith("ms"):
            val = val[:-2]
        try:
            v = int(val)
        except ValueError:
            raise KeyError(f"unknown token name {name!r}") from None
        ms = self.config.time_step_ms
        table = {
            "TIME_SHIFT": (self.shift, v // ms - 1, v % ms == 0),
            "NOTE_ON": (self.note_on, v - self.config.pitch_min, True),
            "NOTE_OFF": (self.note_off, v - self.config.pitch_min, True),
            "DURATION": (self.duration, v // ms - 1, v % ms == 0),
            "VELOCITY": (self.velocity, v, True),
        }
        if head not in table or table[head][0] is None:
            raise KeyError(f"unknown token name {name!r}")
        block, off, exact = table[head]
        if not exact or not 0 <= off < block.size:
            raise KeyError(f"token {name!r} is outside this vocabulary")
        return block.start + off

    def describe(self) -> list[tuple[str, int, int, str, str]]:
        """Rows (block, first id, last id, first name, last name) for printing."""
        return [
            (b.name, b.start, b.stop - 1, self.token_name(b.start), self.token_name(b.stop - 1))
            for b in self.blocks
        ]
