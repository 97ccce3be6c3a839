import numpy as np
import pytest

from tatumflow import read_midi
from tatumflow.corpus import export_corpus, hash_split, resolve_source, score_to_performance


def test_export_a_few_chorales(tmp_path):
    folder = export_corpus("chorales", out=tmp_path / "ch", limit=3, progress=False, workers=1)
    files = sorted(folder.glob("*.mid"))
    assert len(files) == 3
    p = read_midi(files[0])
    assert len(p) > 50 and 30 <= p.pitches.min() and p.pitches.max() <= 90
    assert set(np.unique(p.velocities)) <= {72, 88}


def test_score_tempo_is_honoured():
    from music21 import note, stream, tempo

    s = stream.Score()
    part = stream.Part()
    part.append(tempo.MetronomeMark(number=60))
    part.append([note.Note("C4", quarterLength=1.0) for _ in range(2)])
    part.append(tempo.MetronomeMark(number=120))
    part.append([note.Note("D4", quarterLength=1.0) for _ in range(2)])
    s.append(part)
    p = score_to_performance(s)
    np.testing.assert_allclose(p.onsets, [0.0, 1.0, 2.0, 2.5])
    np.testing.assert_allclose(p.offsets, [1.0, 2.0, 2.5, 3.0])


def test_hash_split_is_stable_and_balanced():
    keys = [f"piece{i}.mid" for i in range(4000)]
    splits = [hash_split(k) for k in keys]
    assert splits == [hash_split(k) for k in keys]
    assert 0.85 < splits.count("train") / 4000 < 0.95


def test_unknown_source_is_a_clear_error(tmp_path):
    from tatumflow import CorpusError

    with pytest.raises(CorpusError, match="not a built-in corpus"):
        resolve_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .mid"):
        resolve_source(tmp_path / "empty")
    (tmp_path / "i.csv").write_text("file,split\nx.mid,train\n")
    with pytest.raises(CorpusError, match="'path' column"):
        resolve_source(tmp_path / "i.csv")
