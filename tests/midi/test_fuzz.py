"""2,000 seeded mutations of real-shaped MIDI files through reader -> validate ->
tokenize -> decode -> features -> assess: each is read correctly or rejected with
the project's own error, never anything else (``scripts/fuzz_pipeline.py``; the
100,000-input run and its result are in the README)."""

import importlib.util

from conftest import REPO


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_pipeline", REPO / "scripts" / "fuzz_pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_two_thousand_mutated_files_never_break_the_pipeline():
    r = _fuzz_module().fuzz(2000, seed=0)
    assert r["defects"] == [], r["defects"][:3]
    out = r["outcomes"]
    assert sum(out.values()) == 2000
    # The run exercised both sides: files read and fully processed, and several kinds of rejection.
    assert out.get("ok", 0) >= 100
    assert sum(v for k, v in out.items() if k.startswith("rejected")) >= 1000
    assert len([k for k in out if k.startswith("rejected")]) >= 3


def test_the_oracle_catches_a_reader_that_loses_notes(monkeypatch, tmp_path):
    """The check is real: a reader that drops the last note of each file is caught."""
    import tatumflow.midi as midi_pkg

    fz = _fuzz_module()
    real = midi_pkg.read_midi

    def lossy(path, **kw):
        p = real(path, **kw)
        return p.replace(notes=p.notes[:-1]) if len(p) else p

    monkeypatch.setattr(midi_pkg, "read_midi", lossy)
    r = fz.fuzz(200, seed=1)
    assert r["outcomes"].get("DEFECT", 0) > 0 and "strict parser sees" in r["defects"][0]["error"]
