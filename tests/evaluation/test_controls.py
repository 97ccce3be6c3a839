"""The scorecard's measures of a control's effect read the music they say they read."""

import numpy as np

from conftest import tune
from tatumflow.evaluation import controls as C
from tatumflow.features import parse_chord
from tatumflow.performance import Performance


def block_chords(symbols, seconds_each=2.0, hits=4, transpose=0):
    """Each chord struck ``hits`` times over ``seconds_each`` seconds, close voicing from C3."""
    on, off, pit = [], [], []
    for k, s in enumerate(symbols):
        root, iv = parse_chord(s)
        for h in range(hits):
            t = k * seconds_each + h * seconds_each / hits
            for i in iv:
                on.append(t)
                off.append(t + seconds_each / hits * 0.9)
                pit.append(48 + (root + i + transpose) % 12 + (12 if i >= 12 else 0))
    return Performance.from_arrays(on, off, pit, np.full(len(on), 80))


def test_chord_accuracy_reads_the_requested_progression():
    prog = ["Dm7", "G7", "Cmaj7", "A7"]
    played = block_chords(prog)
    acc = C.chord_accuracy(played, prog)
    assert acc["root_accuracy"] == 1.0 and acc["chord_accuracy"] == 1.0 and acc["windows"] == 8
    # the same chords a tone higher: no root matches
    assert C.chord_accuracy(block_chords(prog, transpose=2), prog)["root_accuracy"] == 0.0
    # right roots, wrong quality: roots count, root+quality does not
    wrong = block_chords(["Dmaj7", "Gm7", "Cm7", "Am7"])
    a = C.chord_accuracy(wrong, prog)
    assert a["root_accuracy"] == 1.0 and a["chord_accuracy"] == 0.0
    # the progression is spread over the given duration
    assert C.chord_accuracy(block_chords(["Dm7", "Dm7", "G7", "G7"]), ["Dm7", "G7"])["chord_accuracy"] == 1.0


def test_chroma_rhythm_and_key_measures():
    a = tune(1, bars=16)
    assert abs(C.chroma_cosine(a, a) - 1.0) < 1e-9
    n = a.notes.copy()
    n["pitch"] += 6
    tritone = a.replace(notes=n)
    assert C.chroma_cosine(a, tritone) < 0.6
    assert C.key_correlation(a, a) > 0.999 and C.key_correlation(a, tritone) < 0.5
    assert abs(C.rhythm_correlation(a, a) - 1.0) < 1e-9
    n = a.notes.copy()
    n["onset"] += 0.25
    n["offset"] += 0.25
    shifted = a.replace(notes=n)
    assert C.rhythm_correlation(a, shifted) < C.rhythm_correlation(a, a)


def test_degeneration_diversity_and_rank_measures():
    held = Performance.from_arrays([0.0, 1.0, 2.0], [19.0, 1.5, 2.5], [60, 64, 67], [80, 80, 80])
    assert C.longest_note(held) == 19.0
    assert C.tail_density(held, 20.0) == 0.0
    busy = Performance.from_arrays(np.arange(0, 20, 0.1), np.arange(0, 20, 0.1) + 0.05, np.full(200, 60),
                                   np.full(200, 80))
    assert abs(C.tail_density(busy, 20.0) - 10.0) < 1e-9
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert abs(C.diversity(x, np.ones(2)) - 5.0) < 1e-12
    assert abs(C.diversity(x, np.array([3.0, 4.0])) - np.sqrt(2)) < 1e-12
    assert C.spearman([0, 1, 2, 3], [1, 5, 9, 10]) == 1.0
    assert C.spearman([0, 1, 2, 3], [4, 3, 2, 1]) == -1.0
    assert C.spearman([0, 1, 2], [1, 1, 1]) == 0.0
