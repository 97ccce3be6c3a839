"""Moving code must not change music: today's code writes, from the schema-1 fixture
checkpoints, exactly the ids that main wrote at 37becc2 (tests/fixtures/README.md)."""

import json
from pathlib import Path

import numpy as np

from tatumflow import Performance
from tatumflow.models.music_rnn import NoteStreamer, performance_to_notes
from tatumflow.models.tatumflow import GenerationPipeline, Sampling
from tatumflow.pretrained import load_model

FIX = Path(__file__).resolve().parents[1] / "fixtures"


def prompt(seed, n=24, span=3.0):
    rng = np.random.default_rng(seed)
    on = np.sort(rng.uniform(0, span, n))
    return Performance.from_arrays(on, on + rng.uniform(0.1, 0.6, n), rng.integers(48, 84, n),
                                   rng.integers(30, 110, n))


def test_every_mode_writes_the_pinned_ids():
    pinned = json.loads((FIX / "pinned_ids.json").read_text())
    pipe = GenerationPipeline(load_model(FIX / "tatumflow_v1")[0])
    s = Sampling(steps=10)
    a, b = prompt(0), prompt(1)
    got = {
        "unconditional": pipe.unconditional(2.0, seed=3, sampling=s).ids.tolist(),
        "continuation": pipe.continuation(a, 1.5, seed=4, sampling=s).ids.tolist(),
        "style-transfer": pipe.style_transfer(a, b, 0.6, seed=5, sampling=s).ids.tolist(),
        "improvise": [r.ids.tolist() for r in pipe.improvise(a, 0.5, 2, seed=6, sampling=s)],
        "edit-harmony": pipe.edit_harmony(a, "Dm7 G7 Cmaj7", 0.6, seed=7, sampling=s).ids.tolist(),
        "interpolate": [r.ids.tolist() for r in pipe.interpolate(a, b, (0.0, 1.0), 1.5, seed=8, sampling=s)],
    }
    for mode, ids in got.items():
        assert ids == pinned[mode], mode
    assert sum(len(v) for v in pinned.values()) > 500  # the pins hold music, not just markers
    st = NoteStreamer(load_model(FIX / "music_rnn_v1")[0], seed=9)
    st.prime(performance_to_notes(a))
    assert [list(map(float, st.next_note())) for _ in range(12)] == pinned["music_rnn"]
