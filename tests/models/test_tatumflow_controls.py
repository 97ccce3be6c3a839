"""Each TatumFlow control changes the music the way its name says.

On ``tests/fixtures/tatumflow_controls`` (a micro TatumFlow trained on a
synthetic two-style corpus by ``scripts/make_control_fixture.py``: *high*
pieces play eighth notes in the treble, *low* ones quarter notes in the bass,
both over random chord progressions) and ``tests/fixtures/tatumflow_control_track``
(a micro decoder with the control track, trained by the same script on the
same corpus with ``configs/tatumflow_micro_control_track.yaml``; ``tatumflow_pianist_control``
with ``configs/tatumflow_micro_pianist_control.yaml``, also told each piece's pianist). A control
that stops reaching the music (the decoder ignoring the style or the theory, a mode dropping its
condition) fails these tests; determinism and grammar are tested elsewhere."""

import sys
from pathlib import Path

import numpy as np
import pytest

from tatumflow.evaluation import controls as C
from tatumflow.models.tatumflow import GenerationPipeline
from tatumflow.pretrained import load_model

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from make_control_fixture import piece  # noqa: E402

FIX = ROOT / "tests" / "fixtures" / "tatumflow_controls"


@pytest.fixture(scope="module")
def pipe():
    return GenerationPipeline(load_model(FIX)[0], steps=20)


@pytest.fixture(scope="module")
def pieces():
    rng = np.random.default_rng(123)  # not the fixture's training pieces
    return piece(rng, "high", 12.0), piece(rng, "low", 12.0)


def register(p) -> float:
    return float(p.notes["pitch"].mean())


def test_style_transfer_at_full_strength_moves_toward_the_style_more_than_seeds_differ(pipe, pieces):
    high, low = pieces
    weak = [pipe.style_transfer(high, low, 0.05, seed=s).performance for s in (0, 1)]
    full = [pipe.style_transfer(high, low, 1.0, seed=s).performance for s in (0, 1)]
    effect = register(weak[0]) - register(full[0])  # toward the low style: the register falls
    seeds = max(abs(register(weak[0]) - register(weak[1])), abs(register(full[0]) - register(full[1])))
    assert effect > seeds, (effect, seeds)
    assert effect > 0


@pytest.mark.xfail(strict=True, reason="edit-harmony does not follow the requested chords yet: on this fixture "
                   "the edited and the unedited outputs match 0 of the requested roots (issue 13)")
def test_edit_harmony_follows_the_requested_roots_more_than_the_unedited_output(pipe, pieces):
    high, _ = pieces
    prog = "Dm7 G7 Cmaj7 A7 Dm7 G7"
    edited = pipe.edit_harmony(high, prog, 0.8, seed=0).performance
    unedited = pipe.style_transfer(high, high, 0.8, seed=0).performance  # same noising, its own harmony
    a = C.chord_accuracy(edited, prog.split(), duration=high.end)["root_accuracy"]
    b = C.chord_accuracy(unedited, prog.split(), duration=high.end)["root_accuracy"]
    assert a > b, (a, b)


def test_interpolation_endpoints_differ_and_follow_their_sources(pipe, pieces):
    high, low = pieces
    a0, a1 = (r.performance for r in pipe.interpolate(high, low, (0.0, 1.0), 8.0, seed=0))
    assert not np.array_equal(a0.notes["pitch"], a1.notes["pitch"])
    assert register(a0) > register(a1)  # alpha 0 is the high piece's style


def test_edit_harmony_chord_bias_moves_the_notes_onto_the_requested_chords(pipe, pieces):
    """``chord_bias`` (nats on the tones of the chord asked for at each moment)
    raises the share of new notes that are tones of the requested chord, and
    the root accuracy with it; 0 leaves the model alone."""
    from dataclasses import replace

    from tatumflow.features.chords import parse_progression

    high, _ = pieces
    prog = "Dm7 G7 Cmaj7 A7 Dm7 G7"
    chords = parse_progression(prog)

    def tones(p) -> float:
        on = p.notes["onset"]
        k = np.clip((on / high.end * len(chords)).astype(int), 0, len(chords) - 1)
        return float(np.mean([(pc - chords[j][0]) % 12 in chords[j][1] for pc, j in zip(p.notes["pitch"] % 12, k)]))

    alone, nudged = (pipe.edit_harmony(high, prog, 0.8, seed=0, sampling=replace(pipe.sampling, chord_bias=b))
                     for b in (0.0, 4.0))
    assert alone.info["chord_bias"] == 0.0 and nudged.info["chord_bias"] == 4.0
    assert tones(nudged.performance) > tones(alone.performance) + 0.2, (tones(alone.performance),
                                                                       tones(nudged.performance))
    acc = [C.chord_accuracy(r.performance, prog.split(), duration=high.end)["root_accuracy"] for r in (alone, nudged)]
    assert acc[1] > acc[0], acc


@pytest.fixture(scope="module")
def track():
    return GenerationPipeline(load_model(ROOT / "tests" / "fixtures" / "tatumflow_control_track")[0])


def test_control_track_edit_harmony_plays_the_requested_roots(track, pieces):
    """Asked for one progression, the control-track decoder plays its roots far
    more often than when asked for another (measured against the first)."""
    prog, other = "Dm7 G7 Cmaj7 A7 Dm7 G7", "F#7 Bmaj7 Ebm7 Abm7 F#7 Bmaj7"

    def acc(src, chords, seed):
        out = track.edit_harmony(src, chords, seed=seed).performance
        return C.chord_accuracy(out, prog.split(), duration=src.end)["root_accuracy"]
    asked = np.mean([acc(src, prog, seed) for src in pieces for seed in (0, 1)])
    not_asked = np.mean([acc(src, other, seed) for src in pieces for seed in (0, 1)])
    assert asked > not_asked + 0.25, (asked, not_asked)


def test_control_track_improvise_strays_further_with_more_creativity(track, pieces):
    """Creativity leaves more of the prompt's plan to the model: the variations'
    chroma distance to the prompt rises from creativity 0 to 1."""
    dist = {c: np.mean([1.0 - C.chroma_cosine(r.performance, src) for src in pieces
                        for r in track.improvise(src, c, 2, seed=0)]) for c in (0.0, 1.0)}
    assert dist[1.0] > dist[0.0] + 0.1, dist


def test_control_track_chroma_guidance_is_what_makes_an_edit_follow_the_chords(track, pieces):
    """Guidance on the plan's chroma: at 0 the requested chords are ignored (the
    roots fall to what the model plays unasked), at 2 they are followed at least as
    well as the plan alone does."""
    from dataclasses import replace

    prog = "Dm7 G7 Cmaj7 A7 Dm7 G7"

    def acc(w):
        s = replace(track.sampling, chroma_guidance=w)
        return np.mean([C.chord_accuracy(track.edit_harmony(src, prog, seed=seed, sampling=s).performance,
                                         prog.split(), duration=src.end)["root_accuracy"]
                        for src in pieces for seed in (0, 1)])
    ignored, given, guided = acc(0.0), acc(1.0), acc(2.0)
    assert given > ignored + 0.25 and guided >= given - 0.05, (ignored, given, guided)


def test_control_track_style_transfer_lets_go_of_the_content_with_strength(track, pieces):
    """Strength 0 keeps the content's chroma; strength 1 lets it go (the chroma
    cosine with the content falls by more than seeds move it)."""
    high, low = pieces

    def cos(strength, seed):
        return C.chroma_cosine(track.style_transfer(high, low, strength, seed=seed).performance, high)
    kept = [cos(0.0, seed) for seed in (0, 1, 2)]
    free = [cos(1.0, seed) for seed in (0, 1, 2)]
    assert np.mean(kept) - np.mean(free) > 2 * np.std(kept) + 0.05, (kept, free)


def test_control_track_style_plan_moves_each_frame_to_the_styles_texture(track, pieces):
    """Style transfer's plan keeps the content's chroma and silent frames and moves
    each sounding frame's texture ``strength`` of the way to the style's mean: at 1
    every such frame asks for the style's texture."""
    high, low = pieces
    own, style = track.plan_of(high), track.plan_of(low).mean_texture()
    live = own.texture[:, 0] > 0
    for strength in (0.0, 0.5, 1.0):
        plan = track.style_plan(high, low, strength)
        np.testing.assert_allclose(plan.chroma, own.chroma)
        np.testing.assert_allclose(plan.texture[~live], own.texture[~live])
        np.testing.assert_allclose(plan.texture[live], (1 - strength) * own.texture[live] + strength * style)


def test_control_track_style_transfer_takes_the_styles_register(track, pieces):
    """At strength 1 the high piece re-styled after the low one sits in the low
    piece's register on every seed (this micro decoder, told the high piece's own
    plan, still drops to the bass on some seeds: strength 0 is only higher on average)."""
    high, low = pieces
    kept = [register(track.style_transfer(high, low, 0.0, seed=seed).performance) for seed in range(4)]
    moved = [register(track.style_transfer(high, low, 1.0, seed=seed).performance) for seed in range(4)]
    assert all(abs(m - register(low)) < 3.0 for m in moved), (moved, register(low))
    assert np.mean(kept) - np.mean(moved) > 5.0, (kept, moved)


@pytest.fixture(scope="module")
def pianist():
    return GenerationPipeline(load_model(ROOT / "tests" / "fixtures" / "tatumflow_pianist_control")[0])


def test_the_pianist_control_plays_as_the_pianist_told(pianist):
    """Told nothing but who plays, the pianist-controlled decoder plays the treble
    as *high* and the bass as another pianist (*low*, its only other) on every seed."""
    assert pianist.model.config.pianists == ("high",) and pianist.pianist == "high"
    as_high = [register(pianist.unconditional(8.0, seed=s).performance) for s in range(3)]
    pianist.pianist = "someone else"  # any name the model does not know: another pianist
    try:
        as_other = [register(pianist.unconditional(8.0, seed=s).performance) for s in range(3)]
    finally:
        pianist.pianist = "high"
    assert min(as_high) > max(as_other) + 12.0, (as_high, as_other)


def test_interpolation_moves_from_one_pianist_to_the_other(pianist, pieces):
    """Interpolating a piece with itself leaves only the pianist to move: from the
    model's pianist (*high*) at alpha 0 to another (*low*) at 1 the register falls."""
    high, _ = pieces
    ends = [[register(r.performance) for r in pianist.interpolate(high, high, (0.0, 1.0), 8.0, seed=s)]
            for s in range(3)]
    drop = np.mean([a - b for a, b in ends])
    assert drop > 3.0, ends
    same = [[register(r.performance) for r in pianist.interpolate(high, high, (0.0, 1.0), 8.0, seed=s,
                                                                  pianists=("high", "high"))] for s in range(3)]
    assert np.allclose([a for a, _ in same], [b for _, b in same])  # one pianist: alpha changes nothing
