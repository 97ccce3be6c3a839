"""`make demo`'s music, end to end: the shipped models write every TatumFlow mode, a Music
RNN continuation and the plain transformer's continuation (training skipped here; the
training path is tested with each preset in test_configs.py)."""

from pathlib import Path

from tatumflow import read_midi
from tatumflow.demo import run_demo


def test_the_demo_writes_music_from_every_shipped_generator(tmp_path):
    lines = []
    res = run_demo(tmp_path, train_seconds=0, tatumflow_seconds=0, melody_seconds=0, echo=lines.append)
    assert res["tatumflow"]["grammar_errors"] == 0
    assert set(res["tatumflow"]["outputs"]) == {"unconditional", "continuation", "style-transfer", "improvise",
                                                "edit-harmony", "interpolate"}
    for key in ("generated", "transformer"):
        path = Path(res[key])
        assert len(read_midi(path)) > 20 and path.with_suffix(".png").is_file()
    assert any("the plain transformer transformer_tatum, continues it" in line for line in lines)
