"""Moving code must not change music: today's code writes, from the schema-1 fixture
checkpoints, exactly the ids that main wrote at 37becc2 (tests/fixtures/README.md).
Both runs are the same function, ``tests/fixtures/pin_ids_v1.py:run``, given each
version's loaders."""

import json
import sys
from pathlib import Path

import numpy as np

FIX = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIX))
from pin_ids_v1 import run_today  # noqa: E402


def test_every_mode_writes_the_pinned_ids():
    pinned = json.loads((FIX / "pinned_ids.json").read_text())
    got = json.loads(json.dumps(run_today()))
    assert sum(len(v) for v in pinned.values()) > 500  # the pins hold music, not just markers
    for mode in pinned:
        if mode == "music_rnn":  # (pitch, step s, duration s): pitches exact, times to float32 rounding
            # (the last bit of an LSTM's float32 output differs between CPUs' kernels)
            g, p = np.array(got[mode]), np.array(pinned[mode])
            assert g.shape == p.shape and (g[:, 0] == p[:, 0]).all(), mode
            np.testing.assert_allclose(g[:, 1:], p[:, 1:], rtol=1e-6, atol=1e-7, err_msg=mode)
        else:
            assert got[mode] == pinned[mode], mode
