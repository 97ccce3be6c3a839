"""Every TatumFlow generation mode behind one object.

>>> model, _ = tatumflow.pretrained.load_model("runs/tatumflow_tiny/best")
>>> pipe = GenerationPipeline(model)
>>> perf = pipe.continuation(prompt, seconds=20, seed=1).performance

Modes: :meth:`unconditional`, :meth:`continuation`, :meth:`style_transfer`,
:meth:`improvise`, :meth:`edit_harmony`, :meth:`interpolate`, listed once in
:data:`MODES` (what ``generate --mode`` accepts). Each is deterministic for a
given seed and returns Performances whose tokens obey the grammar (constrained
decoding, :mod:`tatumflow.generation.constrained`).

How the latents are made: new music starts from noise and is denoised (DDIM or
DDPM, classifier-free guidance on style and theory); a prompt's latents are
kept and the rest inpainted (at every step the known latents are replaced by
their noised values); transformations noise a piece's latents to a step set by
``strength`` and denoise them under the new condition. The causal decoder then
writes tokens left to right (KV cache), conditioned on the latents and style;
music longer than one window continues from the last half window.

A decoder-only model with a control track (:mod:`.controls`) has no latents:
its transforming modes write new music that follows a control plan (chroma and
texture per second) made from the inputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ...diffusion import DDIMSampler, DDPMSampler, sample
from ...errors import TatumFlowError
from ...features.chords import parse_progression, progression_symbols
from ...generation.constrained import GrammarState, sample_next
from ...nn import KVCache
from ...performance import Performance
from ...tokenizer import PerformanceTokenizer
from .controls import CLUSTER_SECONDS, ControlPlan, blend, token_pitches, token_seconds
from .model import DECODER_ONLY, PLAIN_MODES

#: A model with a control track: each mode's (chroma, texture[, pianist]) guidance (``Sampling``), chosen
#: on the Art Tatum val album (README, "Control guidance"). Guiding the chroma makes an edit
#: follow the requested chords (root / root+quality accuracy 0.65 / 0.29 -> 0.83 / 0.64
#: at 3 with the chord weights of the time; 0.84 / 0.71 with ``controls.chord_chroma``'s
#: present ones) and keeps an improvisation in the
#: prompt's key (0.58 -> 0.73 at creativity 0.5; 0.65 with the texture guided too);
#: guiding the texture moves an interpolation's P(target) with alpha (Spearman -0.15 -> 0.52); with
#: the pianist control (val, seeds 0 / 1), guiding who plays at 4 and the texture at 3 reads P's
#: Spearman 0.83 / 0.83 and the texture's 0.69 / 0.73, against 0.72 / 0.73 and 0.60 / 0.68 with
#: both at 2 (a chroma, texture, pianist triple; README "The pianist control"); with the count
#: control, who plays at 6 and the texture at 3: 0.87 / 0.80 and 0.79 / 0.84, against 0.83 / 0.65
#: and 0.81 / 0.86 at 4 (README "The count control"); ...
CONTROL_GUIDANCE = {"edit-harmony": (3.0, 1.0), "interpolate": (1.0, 3.0, 6.0), "improvise": (2.0, 1.0)}
#: ... style transfer lets go of the content's harmony as ``strength`` grows: the chroma
#: guidance falls from 1 (the content's chroma as given) at strength 0 to
#: ``1 - STYLE_RELEASE`` at strength 1, leaving it to the model's own music, which is the
#: style's (a model adapted to it); the texture (moved toward the style's) is followed as given.
STYLE_RELEASE = 1.0
#: ... and, with the pianist control, leans toward the pipeline's pianist as it grows: pianist
#: guidance ``1 + STYLE_PIANIST * strength`` (README "The count control").
STYLE_PIANIST = 2.0


def _running(times, pitches, frame: float) -> tuple[list, list]:
    """Of tokens at ``times`` with ``pitches`` (:func:`controls.token_pitches`), those the
    count and tally controls need to tell the last one's: its frame's, the onsets of the
    cluster sounding before the frame (a cluster can cross into it), and the onset before
    that cluster (which says the cluster began there)."""
    times, pitches = np.asarray(times, float), np.asarray(pitches)
    f = np.floor(times / frame + 1e-9)
    keep = f == f[-1]
    before = np.flatnonzero(~keep & (pitches >= 0))
    if len(before):
        q = np.round(times[before] / CLUSTER_SECONDS)
        keep[before[q == q[-1]]] = True
        earlier = before[q != q[-1]]
        if len(earlier):
            keep[earlier[-1]] = True
    return list(times[keep]), list(pitches[keep])


def unit_latents(x0: torch.Tensor) -> torch.Tensor:
    """Latents on the model's latent set: zero mean, unit variance per span (B, n, D)."""
    return torch.nn.functional.layer_norm(x0, x0.shape[-1:])


@dataclass
class Sampling:
    """Decoding and denoising settings shared by every mode."""

    temperature: float = 1.0
    top_k: Optional[int] = None
    top_p: Optional[float] = 0.95
    min_p: Optional[float] = None
    steps: int = 50               # denoising steps (<= the model's diffusion steps)
    sampler: str = "ddim"         # ddim | ddpm
    eta: float = 0.0              # DDIM stochasticity (0 deterministic .. 1 DDPM-like)
    guidance: float = 2.0         # classifier-free guidance weight (1 = none)
    use_cache: bool = True
    max_polyphony: Optional[int] = None       # no new note while this many sound
    # A note held this long is released next (None: never). 8 s is longer than any note of
    # Art Tatum's train albums (their 99.9th percentile: 4.7 s); without it the tiny model
    # held 2.3% of its continuation notes longer than that, some for the whole 20 s.
    max_note_seconds: Optional[float] = 8.0
    # edit-harmony: nats added to the logits of NOTE_ONs whose pitch class belongs to the
    # chord requested at that moment (0: the model alone; a soft bias, never a hard mask).
    chord_bias: float = 0.0
    # A model with a control track: classifier-free guidance on each part of its plan. Each
    # step's logits are those told the whole plan plus ``w - 1`` times what that part changes
    # (the logits told the plan less those with the part hidden, as the control dropout
    # trained); 1: the plan as given, 0: that part ignored; None: the mode's own
    # (:data:`CONTROL_GUIDANCE`).
    chroma_guidance: Optional[float] = None
    texture_guidance: Optional[float] = None
    pianist_guidance: Optional[float] = None   # ... and on who plays (the pianist control)

    def filters(self) -> dict:
        return {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p, "min_p": self.min_p}

    def grammar(self, tok: PerformanceTokenizer, device) -> GrammarState:
        steps = None if self.max_note_seconds is None else max(1, round(self.max_note_seconds / tok.config.time_step))
        return GrammarState(tok, 1, device, max_polyphony=self.max_polyphony, max_note_steps=steps)


@dataclass
class Result:
    performance: Performance
    ids: np.ndarray
    grammar_errors: int
    info: dict = field(default_factory=dict)


class GenerationPipeline:
    """Every mode of one model. ``sampling`` is what a mode uses when it is given
    none; ``steps`` overrides its denoising steps (fewer: faster, rougher)."""

    def __init__(self, model, device: "str | torch.device" = "cpu", *, sampling: Optional[Sampling] = None,
                 steps: Optional[int] = None):
        self.model = model.eval()
        self.sampling = sampling or Sampling()
        if steps is not None:
            self.sampling = dataclasses.replace(self.sampling, steps=int(steps))
        cfg = model.config
        self.tok = PerformanceTokenizer(cfg.tokenizer)  # checked against the model by its config
        self.device = torch.device(device)
        self.model.to(self.device)
        self.L, self.span = cfg.seq_len, cfg.span
        self.plain = cfg.decoder_only  # the plain causal-transformer baseline: no latents, style or theory
        self.controlled = cfg.control_track  # ... told a control plan: every mode, through the plan
        self.modes = PLAIN_MODES if self.plain and not self.controlled else tuple(MODES)  # what it can generate
        # A model with the pianist control is told who plays: by default its first pianist
        # (the one it was adapted to), in every mode; interpolation moves to another pianist.
        self.pianists = tuple(getattr(cfg, "pianists", ())) if self.controlled else ()
        self.pianist = self.pianists[0] if self.pianists else None

    # ------------------------------------------------------------ pieces
    def tokens(self, perf: Performance) -> list[int]:
        if len(perf) == 0:
            raise TatumFlowError("the input performance has no notes")
        return self.tok.encode(perf, sos=True, eos=False).tolist()

    def _window(self, ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = list(ids)[: self.L]
        x = torch.full((1, self.L), self.tok.vocab.pad_id, dtype=torch.long)
        x[0, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        keep = torch.zeros(1, self.L, dtype=torch.bool)
        keep[0, : len(ids)] = True
        return x.to(self.device), keep.to(self.device)

    @torch.no_grad()
    def analyse(self, ids: Sequence[int]) -> dict:
        """Style posterior (mean, log-variance), latent means, per-span theory (raw
        families) of one window."""
        if self.plain:
            raise TatumFlowError(DECODER_ONLY)
        x, keep = self._window(ids)
        (s_mu, s_lv), (z_mu, _) = self.model.encode(x, keep)
        return {"style": s_mu, "style_logvar": s_lv, "latents": z_mu, "theory_raw": self.model.theory.raw(x),
                "spans": int(keep.sum()) // self.span}

    def _theory(self, raw: list[torch.Tensor], known_spans: Optional[int] = None) -> torch.Tensor:
        th, _ = self.model.theory(raw)
        if known_spans is not None:  # spans with no music yet get the unconditional (null) theory
            th = th.clone()
            th[:, known_spans:] = self.model.null_theory
        return th

    def _sampler(self, s: Sampling):
        m = self.model
        # The latent means are layer-normed per span (model.encode): every step's
        # estimate of the clean latents is put back on that set.
        if s.sampler == "ddim":
            smp = DDIMSampler(m.schedule, m.config.prediction, eta=s.eta, project_x0=unit_latents)
        elif s.sampler == "ddpm":
            smp = DDPMSampler(m.schedule, m.config.prediction, project_x0=unit_latents)
        else:
            raise TatumFlowError(f"sampler must be ddim or ddpm, got {s.sampler!r}")
        smp.set_timesteps(min(s.steps, m.schedule.num_steps))
        return smp

    @torch.no_grad()
    def sample_latents(self, cond: Optional[dict], s: Sampling, gen: torch.Generator, *, batch: int = 1,
                       start: Optional[torch.Tensor] = None, strength: float = 1.0,
                       known: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Latents (B, n, D) by denoising: from noise, or from ``start`` noised to
        ``strength`` (0..1 of the schedule); ``known`` (B, k, D) fixes the first
        k latents (inpainting)."""
        m = self.model
        shape = (batch, m.config.n_latents, m.config.latent_dim)
        smp = self._sampler(s)
        x = torch.randn(shape, generator=gen).to(self.device)
        t0 = None
        if start is not None:
            t0 = smp.start_timestep(strength)
            x = m.schedule.add_noise(start, x, torch.full((batch,), t0, device=self.device))
        full = mask = None
        if known is not None:  # inpainting: the first k latents are known
            full = torch.zeros(shape, device=self.device, dtype=known.dtype)
            full[:, : known.shape[1]] = known
            mask = torch.zeros(shape[:2], dtype=torch.bool, device=self.device)
            mask[:, : known.shape[1]] = True
        return sample(m.denoise, smp, shape, cond=cond, guidance=s.guidance, generator=gen, x_T=x, start_step=t0,
                      known=full, known_mask=mask, device=self.device)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, style: torch.Tensor, history: list[int], state: GrammarState,
               s: Sampling, gen: torch.Generator, *, context: int, max_new: int, until_step: Optional[int] = None,
               theory: Optional[torch.Tensor] = None,
               bias: Optional[Callable[[int], Optional[torch.Tensor]]] = None,
               plan: Optional[ControlPlan] = None) -> list[int]:
        """Write up to ``max_new`` tokens after the last ``context`` tokens of
        ``history`` (the window's prefix), stopping once the music reaches
        ``until_step`` (tokenizer steps). ``bias(step)``: a (V,) logit offset at the
        music's current time (tokenizer steps), or None. ``plan``: the control plan
        of a model with a control track (times from the history's start; None:
        nothing given). Returns the new tokens."""
        m = self.model
        prefix = torch.tensor(history[-context:], dtype=torch.long, device=self.device)[None]
        new: list[int] = []
        cache = KVCache() if s.use_cache else None
        ctl = None
        counting = self.controlled and plan is not None and bool(m.riders)
        if self.controlled and plan is not None:
            times = self.token_times(history)
            pitches = token_pitches(history, self.tok) if counting else None
            ctl = {k: v[:, -context:] for k, v in self._controls(plan, times, pitches).items()}
            if counting:  # the count and tally controls' running state
                here = _running(times, pitches, plan.frame)
        # guidance: row 0 is told the whole plan, each further row the plan less one part
        parts = []
        for part, w in (("chroma", s.chroma_guidance), ("texture", s.texture_guidance),
                        ("pianist", s.pianist_guidance)):
            w = 1.0 if w is None else w
            if w < 0:
                raise TatumFlowError(f"{part}_guidance must be >= 0, got {w}")
            if ctl is not None and w != 1.0 and part in ctl:
                parts.append((part + "_known", w))
        rows = 1 + len(parts)

        def told(c: dict) -> dict:
            if not parts:
                return c
            return {k: torch.cat([v] + [torch.zeros_like(v) if k == hide else v for hide, _ in parts])
                    for k, v in c.items()}

        def guided(logits: torch.Tensor) -> torch.Tensor:
            out = logits[:1]
            for i, (_, w) in enumerate(parts, 1):
                out = out + (w - 1.0) * (logits[:1] - logits[i: i + 1])
            return out

        seq = prefix.expand(rows, -1)
        if ctl is not None:
            ctl = told(ctl)
        logits = guided(m.decode_logits(seq, latents, style, cache=cache, theory=theory, controls=ctl)[:, -1])
        for _ in range(max_new):
            if until_step is not None and int(state.time[0]) >= until_step:
                break
            if bias is not None:
                b = bias(int(state.time[0]))
                if b is not None:
                    logits = logits + b
            tok = sample_next(logits, state.mask(), gen, **s.filters())
            state.update(tok)
            new.append(int(tok[0]))
            if len(new) == max_new:
                break
            now = None  # the new token's controls (the time its music has reached)
            if ctl is not None:
                t = int(state.time[0]) * self.tok.config.time_step
                if counting:
                    new_frame = np.floor(t / plan.frame + 1e-9) != np.floor(here[0][-1] / plan.frame + 1e-9)
                    here[0].append(t)
                    here[1].append(int(token_pitches(int(tok[0]), self.tok)))
                    if new_frame:
                        here = _running(here[0], here[1], plan.frame)
                    now = told({k: v[:, -1:] for k, v in self._controls(plan, here[0], here[1]).items()})
                else:
                    now = told(self._controls(plan, [t]))
            step = tok[:, None].expand(rows, 1)
            if cache is not None:
                logits = m.decode_logits(step, latents, style, cache=cache, offset=seq.shape[1],
                                         theory=theory, controls=now)[:, -1]
                seq = torch.cat([seq, step], 1)
            else:
                seq = torch.cat([seq, step], 1)
                if ctl is not None:
                    ctl = {k: torch.cat([ctl[k], now[k]], 1) for k in ctl}
                logits = m.decode_logits(seq, latents, style, theory=theory, controls=ctl)[:, -1]
            logits = guided(logits)
        return new

    def _controls(self, plan: ControlPlan, seconds, pitch=None) -> dict:
        """The model's control inputs (batch 1) for tokens whose music has reached ``seconds``
        (``pitch``: the tokens' NOTE_ON pitches, for the count and tally controls; see
        :meth:`ControlPlan.at`)."""
        return {k: torch.as_tensor(v, dtype=torch.bool if v.dtype == bool else torch.float32, device=self.device)[None]
                for k, v in plan.at(seconds, pitch).items()}

    @torch.no_grad()
    def continuation_nll(self, windows: torch.Tensor, prefix: int, *, sampling: Optional[Sampling] = None,
                         seed: int = 0, posterior: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token NLL (nats) of ``windows[:, prefix:]`` given ``windows[:, :prefix]``
        (``windows``: (B, seq_len) ids, PAD after the music), the way continuation
        writes music: the prefix's latents come from encoding the prefix alone,
        the later latents are sampled from the diffusion prior under the prefix's
        style and theory. Returns (nll, targets) of the scored, non-PAD tokens.

        ``posterior=True`` decodes with the latents of the whole window instead
        (reconstruction: the latents have seen the tokens they help predict, so
        this is not a likelihood; it shows what the latent plan carries)."""
        m, pad = self.model, self.tok.vocab.pad_id
        if prefix % self.span or not 0 < prefix < self.L:
            raise TatumFlowError(f"prefix {prefix} must be a multiple of the span {self.span} below {self.L}")
        x = windows.to(self.device)[:, : self.L]
        keep = x != pad
        if self.plain:  # no plan to sample: the decoder's own next-token likelihood
            z = style = theory = None
        elif posterior:
            (style, _), (z, _) = m.encode(x, keep)
            theory = self._theory(m.theory.raw(x))
        else:
            kp = keep.clone()
            kp[:, prefix:] = False
            xp = x.masked_fill(~kp, pad)
            (style, _), (z_mu, _) = m.encode(xp, kp)
            k = prefix // self.span
            theory = self._theory(m.theory.raw(xp), known_spans=k)
            cond = {"theory": theory, "style": style}
            z = self.sample_latents(cond, sampling or self.sampling, self._gen(seed), batch=x.shape[0],
                                    known=z_mu[:, :k])
        logits = m.decode_logits(x[:, :-1], z, style, theory=theory)
        tgt = x[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), tgt, reduction="none")
        sel = keep[:, 1:] & (torch.arange(1, x.shape[1], device=x.device) >= prefix)[None]
        return nll[sel].cpu(), tgt[sel].cpu()

    @torch.no_grad()
    def bits_per_note(self, pieces: Sequence[Performance], starts: Sequence[float], *, seed: int = 0,
                      batch: int = 16, sampling: Optional[Sampling] = None) -> dict:
        """Bits per note (:mod:`tatumflow.evaluation.likelihood`) of each piece's music
        from ``starts[i]`` seconds on, given what comes before it and no look-ahead:
        windows of ``seq_len`` tokens whose second half is scored given the first
        (:meth:`continuation_nll`: prefix latents encoded alone, the rest sampled
        from the prior). Tokens before half a window are not scored."""
        from ...evaluation.likelihood import token_bits_per_note

        tok, L, pad = self.tok, self.L, self.tok.vocab.pad_id
        half = max(self.span, (L // 2) // self.span * self.span)
        hop = L - half
        rows = []
        for perf, start in zip(pieces, starts):
            ids = tok.encode(perf, sos=True, eos=True)
            t = self.token_times(ids)
            first = max(int(np.searchsorted(t, start - 1e-9)), half)
            for p in range(first, len(ids), hop):  # window [p - half, p + hop), scored from p
                w = np.full(L, pad)
                seg = ids[p - half: p + hop]
                w[: len(seg)] = seg
                rows.append(w)
        if not rows:
            raise TatumFlowError("no music to score after the given starts")
        x = torch.as_tensor(np.stack(rows))
        nll, tgt = [], []
        for i in range(0, len(x), batch):
            a, b = self.continuation_nll(x[i: i + batch], half, seed=seed + i, sampling=sampling)
            nll.append(a.numpy())
            tgt.append(b.numpy())
        return {**token_bits_per_note(np.concatenate(nll), np.concatenate(tgt), tok), "windows": len(rows)}

    def _finish(self, history: list[int], state: GrammarState, info: dict) -> Result:
        ids = history + state.finish()[0]
        perf = self.tok.decode(np.array(ids))
        return Result(perf, np.array(ids), self.tok.grammar_errors(np.array(ids)), info)

    def _release_unseen(self, history: list[int], state: GrammarState, ctx_start: int) -> None:
        """Release (append NOTE_OFFs for) the notes still sounding whose NOTE_ON lies
        before ``ctx_start``: the next window's decoder cannot see them, so it would
        never end them (they were held to the 8 s limit, blocks of long chords)."""
        from ...tokenizer.vocab import NOTE_OFF, NOTE_ON, VELOCITY

        v = self.tok.vocab
        if v.note_off is None or ctx_start <= 0 or v.type_of[history[-1]] == VELOCITY:
            return
        ids = np.asarray(history[:ctx_start])
        types, vals = v.type_of[ids], v.value_of[ids]
        last_on = {}
        for i in np.flatnonzero((types == NOTE_ON) | (types == NOTE_OFF)):
            if types[i] == NOTE_ON:
                last_on[int(vals[i])] = i
            else:
                last_on.pop(int(vals[i]), None)
        sounding = state.sounding[0].cpu().numpy()
        for pitch in sorted(last_on):
            pi = pitch - self.tok.config.pitch_min
            if sounding[pi] and int(state.on_time[0, pi]) < int(state.time[0]):
                tok = v.note_off.start + pi
                history.append(tok)
                state.update(torch.tensor([tok], device=self.device))

    def _generate(self, history: list[int], style: torch.Tensor, seconds: float, s: Sampling,
                  gen: torch.Generator, *, plan: Optional[ControlPlan] = None,
                  bias: Optional[Callable[[int], Optional[torch.Tensor]]] = None) -> tuple[list[int], GrammarState]:
        """Extend ``history`` by ``seconds`` of music, window by window (``plan``,
        ``bias``: see :meth:`decode`)."""
        if self.pianists:  # told who plays: the plan's pianist, else the pipeline's
            plan = ControlPlan.empty(self.model.config.control_frame) if plan is None else plan
            if plan.pianist is None:
                plan = dataclasses.replace(plan, pianist=self.pianist_weights(self.pianist))
        state = s.grammar(self.tok, self.device)
        state.feed(torch.tensor([history[1:]], dtype=torch.long, device=self.device))
        target = int(state.time[0]) + int(round(seconds / self.tok.config.time_step))
        first = True
        while int(state.time[0]) < target:
            keep_len = self.L // 2 if not first else min(len(history), self.L - self.span)
            if not first:
                self._release_unseen(history, state, len(history) - keep_len)
            ctx = history[-keep_len:] if len(history) > keep_len else list(history)
            lat = theory = None
            if not self.plain:
                k = len(ctx) // self.span
                a = self.analyse(ctx)
                theory = self._theory(a["theory_raw"], known_spans=k)
                lat = self.sample_latents({"theory": theory, "style": style}, s, gen,
                                          known=a["latents"][:, :k] if k else None)
            before = len(history)
            history += self.decode(lat, style, history, state, s, gen, context=len(ctx), max_new=self.L - len(ctx),
                                   until_step=target, theory=theory, bias=bias, plan=plan)
            first = False
            if len(history) == before:  # nothing could be added (cannot happen with a sane grammar)
                break
        return history, state

    # ------------------------------------------------------------ modes
    def _gen(self, seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(int(seed))

    # ------------------------------------------------------------ the control track
    def pianist_weights(self, name: Optional[str]) -> np.ndarray:
        """The pianist control's weights for ``name``: one of the model's ``pianists``,
        or any other name for "another pianist" (a model with the pianist control)."""
        if not self.pianists:
            raise TatumFlowError("this TatumFlow has no pianist control (model.pianists)")
        w = np.zeros(len(self.pianists) + 1)
        w[self.pianists.index(name) if name in self.pianists else len(self.pianists)] = 1.0
        return w

    def plan_of(self, perf: Performance, seconds: Optional[float] = None) -> ControlPlan:
        """The control plan ``perf`` itself follows (its first ``seconds``, default all)."""
        if len(perf) == 0:
            raise TatumFlowError("the input performance has no notes")
        frame = self.model.config.control_frame
        if seconds is not None:
            perf = perf.slice(0.0, seconds)
        return ControlPlan.of(perf, frame, int(np.ceil(max(perf.end, frame) / frame)))

    def write_plan(self, plan: ControlPlan, seconds: float, *, seed: int = 0, sampling: Optional[Sampling] = None,
                   info: Optional[dict] = None, bias: Optional[Callable[[int], Optional[torch.Tensor]]] = None,
                   guidance: tuple[float, ...] = (1.0, 1.0)) -> Result:
        """``seconds`` of new music following ``plan`` (a model with a control track);
        ``guidance``: the chroma, texture and (optionally) pianist guidance where
        ``sampling`` sets none."""
        if not self.controlled:
            raise TatumFlowError("this TatumFlow has no control track (model.control_track)")
        s, gen = sampling or self.sampling, self._gen(seed)
        s = dataclasses.replace(s, chroma_guidance=guidance[0] if s.chroma_guidance is None else s.chroma_guidance,
                                texture_guidance=guidance[1] if s.texture_guidance is None else s.texture_guidance,
                                pianist_guidance=(guidance[2] if len(guidance) > 2 else 1.0)
                                if s.pianist_guidance is None else s.pianist_guidance)
        info = {**(info or {}), "chroma_guidance": s.chroma_guidance, "texture_guidance": s.texture_guidance}
        if self.pianists:
            info["pianist_guidance"] = s.pianist_guidance
        history, state = self._generate([self.tok.vocab.sos_id], None, seconds, s, gen, plan=plan, bias=bias)
        return self._finish(history, state, {"seed": seed, **info})

    def style_plan(self, content: Performance, style_source: Performance, strength: float) -> ControlPlan:
        """Style transfer's plan: the content's, with the texture of each frame that
        has notes moved ``strength`` (0..1) of the way to the style source's mean
        texture (at 1 every such frame asks for the style's; silent frames stay
        silent). Chosen over shifting the content's texture by the difference of the
        means, which keeps its frame-to-frame contour: on the Art Tatum val album
        (24 sources, seeds 0 / 1) P(target) .56/.80/.90/.90 and .56/.76/.87/.89 at
        strength .25-1 against .43/.67/.77/.79 and .56/.62/.73/.83 (README, "Control
        guidance")."""
        if not 0.0 <= strength <= 1.0:
            raise TatumFlowError(f"strength must be in [0, 1], got {strength}")
        plan = self.plan_of(content)
        live = plan.texture[:, 0] > 0
        plan.texture[live] += strength * (self.plan_of(style_source).mean_texture() - plan.texture[live])
        return plan

    def sample_style(self, gen: torch.Generator) -> torch.Tensor:
        return torch.randn((1, self.model.config.style_dim), generator=gen).to(self.device)

    @torch.no_grad()
    def unconditional(self, seconds: float = 20.0, *, style: Optional[torch.Tensor] = None, seed: int = 0,
                      sampling: Optional[Sampling] = None) -> Result:
        s, gen = sampling or self.sampling, self._gen(seed)
        if self.plain:
            if style is not None:
                raise TatumFlowError("a decoder-only TatumFlow (the plain baseline) has no style; "
                                     "generate unconditionally without --style")
        else:
            style = self.sample_style(gen) if style is None else style.to(self.device)
        history, state = self._generate([self.tok.vocab.sos_id], style, seconds, s, gen)
        return self._finish(history, state, {"mode": "unconditional", "seed": seed})

    @torch.no_grad()
    def continuation(self, prompt: Performance, seconds: float = 20.0, *, seed: int = 0,
                     sampling: Optional[Sampling] = None) -> Result:
        s, gen = sampling or self.sampling, self._gen(seed)
        history = self.tokens(prompt)
        style = None if self.plain else self.analyse(history[-self.L:])["style"]
        n_prompt = len(history)
        history, state = self._generate(history, style, seconds, s, gen)
        return self._finish(history, state, {"mode": "continuation", "seed": seed, "prompt_tokens": n_prompt})

    def _transform(self, a: dict, seconds: float, style: torch.Tensor, strength: float, s: Sampling,
                   gen: torch.Generator, theory_raw: Optional[list] = None,
                   bias: Optional[Callable[[int], Optional[torch.Tensor]]] = None) -> tuple[list[int], GrammarState]:
        """Noise a window's latents (its analysis ``a``) to ``strength``, denoise under
        (style, theory), decode ``seconds`` of music anew (``bias``: see :meth:`decode`)."""
        raw = a["theory_raw"] if theory_raw is None else theory_raw
        cond = {"theory": self._theory(raw, known_spans=max(a["spans"], 1)), "style": style}
        lat = self.sample_latents(cond, s, gen, start=a["latents"], strength=strength)
        state = s.grammar(self.tok, self.device)
        history = [self.tok.vocab.sos_id]
        history += self.decode(lat, style, history, state, s, gen, context=1, max_new=self.L - 1,
                               until_step=int(seconds / self.tok.config.time_step), theory=cond["theory"],
                               bias=bias)
        return history, state

    def windows(self, perf: Performance) -> list[tuple[float, float]]:
        """Consecutive time windows covering ``perf``, each encoding to fewer than
        ``seq_len`` tokens (a window's length follows the music's density)."""
        n, end = len(self.tokens(perf)), perf.end
        if n < self.L:
            return [(0.0, end)]
        out, t = [], 0.0
        step = end * 0.85 * self.L / n
        while t < end - 1e-6:
            d = step
            while d > 0.05:  # denser than average here: a shorter window
                seg = perf.slice(t, min(t + d, end))
                if len(seg) == 0 or len(self.tokens(seg)) < self.L:
                    break
                d *= 0.8
            out.append((t, min(t + d, end)))
            t += d
        return out

    def _transform_piece(self, piece: Performance, style_of, strength: float, s: Sampling, gen: torch.Generator,
                         theory_of=None, info: Optional[dict] = None, bias_of=None) -> Result:
        """:meth:`_transform` window by window over the whole piece; the windows'
        outputs are laid end to end (notes cut at their window's end).
        ``style_of(a)`` gives each window's target style from its analysis ``a``
        (:meth:`analyse`), ``theory_of(a, t0, ids)`` optionally its (edited) raw theory
        (``t0``: the window's start in the piece, ``ids``: its tokens), ``bias_of(t0)``
        optionally its decoding bias (:meth:`decode`)."""
        if not 0.0 < strength <= 1.0:
            raise TatumFlowError(f"strength must be in (0, 1], got {strength}")
        if len(piece) == 0:
            raise TatumFlowError("the input performance has no notes")
        wins = self.windows(piece)
        notes, pedals, errors, n_tokens, covered = [], [], 0, 0, 0.0
        for w, (t0, t1) in enumerate(wins):
            seg = piece.slice(t0, t1)
            if len(seg) == 0:
                continue
            ids = self.tokens(seg)[: self.L]
            a = self.analyse(ids)
            raw = theory_of(a, t0, ids) if theory_of else None
            history, state = self._transform(a, seg.end, style_of(a), strength, s, gen, theory_raw=raw,
                                             bias=bias_of(t0) if bias_of else None)
            covered += min(int(state.time[0]) * self.tok.config.time_step, t1 - t0)  # music written per window
            out_ids = np.array(history + state.finish()[0])
            errors += self.tok.grammar_errors(out_ids)
            n_tokens += len(out_ids)
            out = self.tok.decode(out_ids)
            nt = out.notes.copy()
            nt = nt[nt["onset"] < t1 - t0]
            nt["offset"] = np.minimum(nt["offset"], t1 - t0)
            nt["onset"] += t0
            nt["offset"] += t0
            notes.append(nt)
            pd = out.pedals.copy()
            pd["time"] = np.minimum(pd["time"], t1 - t0) + t0  # a closing release stays, at the window's end
            pedals.append(pd)
        perf = Performance(np.concatenate(notes), np.concatenate(pedals), {"mode": (info or {}).get("mode")})
        ids = self.tok.encode(perf, sos=True, eos=False)
        return Result(perf, ids, errors, {**(info or {}), "windows": len(wins), "generated_tokens": n_tokens,
                                          "seconds_covered": covered})

    @torch.no_grad()
    def style_transfer(self, content: Performance, style_source: Performance, strength: float = 0.6, *,
                       seed: int = 0, sampling: Optional[Sampling] = None) -> Result:
        """The whole of ``content``, window by window, re-denoised under the style of
        ``style_source`` from ``strength`` (0..1) of the noise schedule. A model with a
        control track writes it anew from :meth:`style_plan` (the content's chroma, each
        frame's texture moved toward the style source's), the content's chroma let go
        and (with the pianist control) the pipeline's pianist leant on as ``strength``
        grows (:data:`STYLE_RELEASE`, :data:`STYLE_PIANIST`)."""
        if self.controlled:
            plan = self.style_plan(content, style_source, strength)
            return self.write_plan(plan, content.end, seed=seed, sampling=sampling,
                                   guidance=(1.0 - STYLE_RELEASE * strength, 1.0, 1.0 + STYLE_PIANIST * strength),
                                   info={"mode": "style-transfer", "strength": strength})
        s, gen = sampling or self.sampling, self._gen(seed)
        style = self.analyse(self.tokens(style_source)[: self.L])["style"]
        return self._transform_piece(content, lambda a: style, strength, s, gen,
                                     info={"mode": "style-transfer", "seed": seed, "strength": strength})

    @torch.no_grad()
    def improvise(self, prompt: Performance, creativity: float = 0.5, variations: int = 3, *, seed: int = 0,
                  sampling: Optional[Sampling] = None) -> list[Result]:
        """Variations on a prompt: ``creativity`` (0..1) widens the style sampling
        around each window's style posterior (``mu + creativity * sigma * eps``) and
        deepens the denoising (strength 0.2..0.9). A model with a control track writes
        each variation from the prompt's plan with ``creativity / 2`` of its frames'
        chroma and texture left to the model and the rest of the texture jittered by
        ``creativity`` times its spread."""
        if not 0.0 <= creativity <= 1.0:
            raise TatumFlowError(f"creativity must be in [0, 1], got {creativity}")
        s = sampling or self.sampling
        out = []
        if self.controlled:  # the prompt's plan, loosened: frames left to the model, the texture jittered
            base = self.plan_of(prompt)
            live = base.texture[:, 0] > 0
            spread = base.texture[live].std(0) if live.sum() > 1 else np.full(base.texture.shape[1], 0.5)
            for v in range(variations):
                rng = np.random.default_rng([int(seed), v])
                plan = base.copy()
                plan.chroma_known &= ~(rng.random(plan.n_frames) < 0.5 * creativity)
                plan.texture_known &= ~(rng.random(plan.n_frames) < 0.5 * creativity)
                plan.texture[live] += creativity * spread * rng.standard_normal((int(live.sum()), len(spread)))
                out.append(self.write_plan(plan, prompt.end, seed=seed * 1000 + v, sampling=s,
                                           guidance=CONTROL_GUIDANCE["improvise"],
                                           info={"mode": "improvise", "variation": v, "creativity": creativity}))
            return out
        for v in range(variations):
            gen = self._gen(seed * 1000 + v)
            eps = self.sample_style(gen)
            out.append(self._transform_piece(
                prompt, lambda a: a["style"] + creativity * (0.5 * a["style_logvar"]).exp() * eps,
                0.2 + 0.7 * creativity, s, gen,
                info={"mode": "improvise", "seed": seed, "variation": v, "creativity": creativity}))
        return out

    def chord_theory(self, chords: list[tuple[int, tuple[int, ...]]]) -> torch.Tensor:
        """Harmony features (raw, one span per chord) of a block chord of each of
        ``chords`` ((root, intervals) per span)."""
        per = []
        for root, iv in chords:
            pitches = [48 + root + i for i in iv]
            on = np.repeat([0.0, 0.5, 1.0], len(pitches))
            perf = Performance.from_arrays(on, on + 0.45, np.tile(pitches, 3), np.full(len(on), 80))
            ids = self.tok.encode(perf, sos=False, eos=False)[: self.span]
            per.append(np.pad(ids, (0, self.span - len(ids)), constant_values=self.tok.vocab.pad_id))
        x = torch.tensor(np.concatenate(per), dtype=torch.long)[None]
        return self.model.theory.raw(x)[0].to(self.device)

    def token_times(self, ids: Sequence[int]) -> np.ndarray:
        """Each token's time (seconds from the window's start)."""
        return token_seconds(ids, self.tok)

    def chord_tone_bias(self, chord: tuple[int, tuple[int, ...]], nats: float) -> torch.Tensor:
        """(V,) logit offset: ``nats`` on the NOTE_ON of every pitch whose pitch class
        is in ``chord``, 0 elsewhere."""
        v, c = self.tok.vocab, self.tok.config
        root, iv = chord
        pcs = {(root + i) % 12 for i in iv}
        b = torch.zeros(len(v.type_of))
        pitches = np.arange(c.pitch_min, c.pitch_max + 1)
        on = v.note_on.start + np.flatnonzero(np.isin(pitches % 12, list(pcs)))
        b[torch.as_tensor(on)] = float(nats)
        return b.to(self.device)

    @torch.no_grad()
    def edit_harmony(self, piece: Performance, chords: str, strength: float = 0.6, *, seed: int = 0,
                     sampling: Optional[Sampling] = None) -> Result:
        """Keep the piece's style, melody, rhythm and dynamics features; impose the
        chord progression (text, e.g. ``"Dm7 G7 Cmaj7 Cmaj7"``), spread evenly in
        time over the whole piece, on its harmony: each span of each window gets
        the chord asked for at its time. With ``sampling.chord_bias`` > 0 decoding
        also favours the tones of the chord asked for at each moment. A model with a
        control track writes the piece anew from its plan with every frame's chroma
        the tones of the chord asked for (``strength`` is the latent models')."""
        s, gen = sampling or self.sampling, self._gen(seed)
        prog = parse_progression(chords)
        if s.chord_bias < 0:
            raise TatumFlowError(f"chord_bias must be >= 0, got {s.chord_bias}")
        duration = max(piece.end, 1e-6)

        def at(t: float) -> int:  # the chord asked for at time t of the piece
            return int(np.clip(t / duration * len(prog), 0, len(prog) - 1))

        info = {"mode": "edit-harmony", "seed": seed, "chords": chords, "strength": strength, "chord_bias": s.chord_bias}
        biases = [self.chord_tone_bias(c, s.chord_bias) for c in prog] if s.chord_bias > 0 else None
        if self.controlled:  # the piece's texture, the requested chord's tones as each frame's chroma
            plan = self.plan_of(piece).with_chords(progression_symbols(chords), duration)
            bias = (lambda step: biases[at(step * self.tok.config.time_step)]) if biases else None
            return self.write_plan(plan, piece.end, seed=seed, sampling=s, info=info, bias=bias,
                                   guidance=CONTROL_GUIDANCE["edit-harmony"])

        def theory_of(a, t0, ids):
            raw = list(a["theory_raw"])
            spans = max(a["spans"], 1)
            times = self.token_times(ids)
            mid = times[np.minimum(np.arange(spans) * self.span + self.span // 2, len(times) - 1)]
            harmony = raw[0].clone()
            harmony[:, :spans] = self.chord_theory([prog[at(t0 + t)] for t in mid])
            raw[0] = harmony
            return raw

        def bias_of(t0):  # a window starting at t0: the bias at each decoding step (tokenizer time)
            return lambda step: biases[at(t0 + step * self.tok.config.time_step)]
        return self._transform_piece(piece, lambda a: a["style"], strength, s, gen, theory_of, info=info,
                                     bias_of=bias_of if biases else None)

    @torch.no_grad()
    def interpolate(self, a: Performance, b: Performance, alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
                    seconds: float = 15.0, *, seed: int = 0, sampling: Optional[Sampling] = None,
                    pianists: Optional[Sequence[Optional[str]]] = None) -> list[Result]:
        """New music in styles between those of ``a`` (alpha 0) and ``b`` (alpha 1);
        the same seed for every alpha, so only the style changes. A model with a
        control track follows the blend of the two pieces' plans (first ``seconds``);
        with the pianist control, played by a blend of ``pianists`` (who plays ``a``
        and ``b``; default: the pipeline's pianist, then another pianist)."""
        bad = [al for al in alphas if not 0.0 <= al <= 1.0]
        if bad:
            raise TatumFlowError(f"alphas must be in [0, 1], got {bad[0]}")
        if pianists is not None and (not self.pianists or len(pianists) != 2):
            raise TatumFlowError("pianists needs a model with the pianist control and two names (a's, b's)"
                                 if self.pianists else "this TatumFlow has no pianist control (model.pianists)")
        s = sampling or self.sampling
        if self.controlled:  # the two pieces' plans (their first ``seconds``) blended frame by frame
            pa, pb = self.plan_of(a, seconds), self.plan_of(b, seconds)
            if self.pianists:
                who = pianists or (self.pianist, None)
                pa.pianist, pb.pianist = self.pianist_weights(who[0]), self.pianist_weights(who[1])
            return [self.write_plan(blend(pa, pb, al), seconds, seed=seed, sampling=s,
                                    guidance=CONTROL_GUIDANCE["interpolate"],
                                    info={"mode": "interpolate", "alpha": float(al)}) for al in alphas]
        sa = self.analyse(self.tokens(a)[: self.L])["style"]
        sb = self.analyse(self.tokens(b)[: self.L])["style"]
        out = []
        for al in alphas:
            gen = self._gen(seed)
            style = (1 - al) * sa + al * sb
            history, state = self._generate([self.tok.vocab.sos_id], style, seconds, s, gen)
            out.append(self._finish(history, state, {"mode": "interpolate", "seed": seed, "alpha": float(al)}))
        return out


@dataclass
class Inputs:
    """What the modes read; each mode needs some of it (:data:`MODES`)."""

    prompt: Optional[Performance] = None   # the piece to continue / transform; interpolate's first style
    style: Optional[Performance] = None    # the style source; interpolate's second style
    seconds: float = 30.0
    chords: Optional[str] = None
    strength: float = 0.6
    creativity: float = 0.5
    variations: int = 3
    alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)
    seed: int = 0
    style_pianist: Optional[str] = None    # interpolate, the pianist control: who plays ``style`` (None: another)


def _style_of(pipe: GenerationPipeline, perf: Optional[Performance]):
    if perf is not None and pipe.plain:
        raise TatumFlowError("--style: a decoder-only TatumFlow has no style vector to sample under; "
                             "generate unconditionally without --style")
    return None if perf is None else pipe.analyse(pipe.tokens(perf)[: pipe.L])["style"]


@dataclass(frozen=True)
class Mode:
    run: Callable[[GenerationPipeline, Inputs, Sampling], list[tuple[str, Result]]]  # (file suffix, result)
    needs: dict  # Inputs field -> what it is, for the error when it is missing


#: The TatumFlow modes, listed once: ``generate --mode`` choices, the CLI dispatch, :func:`write_every_mode`.
MODES: dict[str, Mode] = {
    "unconditional": Mode(lambda p, i, s: [("", p.unconditional(i.seconds, style=_style_of(p, i.style), seed=i.seed,
                                                                 sampling=s))], {}),
    "continuation": Mode(lambda p, i, s: [("", p.continuation(i.prompt, i.seconds, seed=i.seed, sampling=s))],
                         {"prompt": "the MIDI to continue"}),
    "style-transfer": Mode(lambda p, i, s: [("", p.style_transfer(i.prompt, i.style, i.strength, seed=i.seed,
                                                                  sampling=s))],
                           {"prompt": "the content MIDI", "style": "the MIDI whose style to take"}),
    "improvise": Mode(lambda p, i, s: [(f"_v{k}", r) for k, r in enumerate(
        p.improvise(i.prompt, i.creativity, i.variations, seed=i.seed, sampling=s))],
        {"prompt": "the MIDI to improvise on"}),
    "edit-harmony": Mode(lambda p, i, s: [("", p.edit_harmony(i.prompt, i.chords, i.strength, seed=i.seed,
                                                              sampling=s))],
                         {"prompt": "the piece to re-harmonise", "chords": 'e.g. "Dm7 G7 Cmaj7 Cmaj7"'}),
    "interpolate": Mode(lambda p, i, s: [(f"_a{a:.2f}", r) for a, r in zip(i.alphas, p.interpolate(
        i.prompt, i.style, i.alphas, i.seconds, seed=i.seed, sampling=s,
        pianists=(p.pianist, i.style_pianist) if p.pianists else None))],
        {"prompt": "the first style's MIDI", "style": "the second style's MIDI"}),
}


def run_mode(pipe: GenerationPipeline, mode: str, inputs: Inputs, sampling: Optional[Sampling] = None
             ) -> list[tuple[str, Result]]:
    """One mode's results as ``(file suffix, Result)`` pairs (``_v<k>`` per
    variation, ``_a<alpha>`` per interpolation step, ``""`` otherwise)."""
    if mode not in MODES:
        raise TatumFlowError(f"unknown TatumFlow mode {mode!r}; modes: {', '.join(MODES)}")
    if mode not in pipe.modes:
        raise TatumFlowError(f"--mode {mode}: {DECODER_ONLY}")
    for name, what in MODES[mode].needs.items():
        if getattr(inputs, name) is None:
            raise TatumFlowError(f"--mode {mode} needs --{name} ({what})")
    return MODES[mode].run(pipe, inputs, sampling or Sampling())


def write_results(results: list[tuple[str, Result]], out: "str | Path", *, label: str,
                  pianoroll: "str | Path | None" = None) -> list[tuple[Path, Optional[Path]]]:
    """Write each result to ``out`` (suffixed per variation) and optionally its piano
    roll; returns ``(midi, png or None)`` per result."""
    from ...midi import write_midi
    from ...render import plot_pianoroll

    out, written = Path(out), []
    for suffix, r in results:
        path = write_midi(r.performance, out.with_name(out.stem + suffix + (out.suffix or ".mid")) if suffix else out)
        png = None
        if pianoroll:
            png = Path(pianoroll)
            png = png.with_name(png.stem + suffix + ".png") if suffix else png
            plot_pianoroll(r.performance, png, title=f"{path.name} ({label})")
        written.append((path, png))
    return written


def write_every_mode(pipe: GenerationPipeline, piece: Performance, other: Performance, out: "str | Path", *,
                     seconds: float = 12.0, chords: str = "Dm7 G7 Cmaj7 Cmaj7", seed: int = 0,
                     sampling: Optional[Sampling] = None, pianoroll: bool = True, echo=print) -> dict[str, list]:
    """One output of every mode into ``out/<mode>[_<k>].mid`` (and ``.png``):
    ``piece`` is the prompt / content, ``other`` the second style (unconditional
    samples its style). Returns ``{mode: [(path, Result, seconds of compute), ...]}``."""
    import time

    inputs = Inputs(prompt=piece, style=other, seconds=seconds, chords=chords, strength=0.6, creativity=0.5,
                    variations=2, alphas=(0.0, 0.5, 1.0), seed=seed)
    Path(out).mkdir(parents=True, exist_ok=True)
    written: dict[str, list] = {}
    for mode, spec in MODES.items():
        t0 = time.perf_counter()
        results = run_mode(pipe, mode, inputs if "style" in spec.needs else dataclasses.replace(inputs, style=None),
                           sampling)
        dt = (time.perf_counter() - t0) / len(results)
        files = write_results(results, Path(out) / f"{mode}.mid", label=f"TatumFlow {mode}",
                              pianoroll=Path(out) / f"{mode}.png" if pianoroll else None)
        written[mode] = [(path, r, dt) for (path, _), (_, r) in zip(files, results)]
        for path, r, _ in written[mode]:
            echo(f"      {path}: {len(r.performance)} notes, {r.performance.end:.1f}s, "
                 f"{r.grammar_errors} grammar errors ({dt:.1f}s)")
    return written
