"""`make demo`'s music, end to end: the shipped models write every TatumFlow mode, a Music
RNN continuation, the plain transformer's continuation and the MelodyVAE's interpolation
and bent melody (training skipped here; the training path is tested with each preset in
test_configs.py)."""

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
    melody = {k: read_midi(res["melody"][k]) for k in ("interpolation", "unbent", "bent")}
    assert len(melody["interpolation"]) >= 25  # 5 melodies of 2 bars (39 notes when written)
    assert len(melody["unbent"]) >= 8 and len(melody["bent"]) >= 8  # melodies, not a stray note or two
    unbent, bent = melody["unbent"].notes, melody["bent"].notes
    assert len(unbent) != len(bent) or (unbent["pitch"] != bent["pitch"]).any()  # the bend changed the melody
    assert any("the shipped MelodyVAE (melody_vae_folk_2d)" in line for line in lines)
