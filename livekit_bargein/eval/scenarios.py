"""The bundled scenario set: a deterministic, labeled set of near-end events written as a manifest.

``build_bundled_set(out_dir, seed=0)`` writes ``manifest.jsonl`` (shared/scenario-format.md), the
WAV files it points to (``audio/``) and ``bundle.json``. The same seed gives byte-identical files.

User speech comes from Piper (several pitch/tempo "voices"), non-speech events from
:mod:`livekit_bargein.eval.sounds`; everything goes through a simulated room and sits on a quiet
room tone, so that nothing is studio-dry. Echo, noise beds and the telephone band are only described
in the manifest: the harness applies them.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import sounds
from .manifest import LABELS

if TYPE_CHECKING:
    from .piper_voice import PiperSpeaker

SET_VERSION = "1"
SAMPLE_RATE_HZ = 16_000
MANIFEST_NAME = "manifest.jsonl"
BUNDLE_INFO_NAME = "bundle.json"

LABEL_COUNTS: dict[str, int] = {
    "interrupt": 32,
    "backchannel": 12,
    "cough": 6,
    "laugh": 6,
    "throat_clear": 5,
    "sneeze": 4,
    "breath": 4,
    "noise": 8,
    "background_speech": 8,
    "echo_only": 12,
}

AGENT_REPLIES: tuple[str, ...] = (
    "Your table for four is booked for Friday at seven thirty in the evening, under the name "
    "Morgan. We will hold the table for fifteen minutes, and if your plans change you can "
    "cancel online or call us any time before noon on the day.",
    "The wireless headphones are one hundred and twenty nine dollars right now, which "
    "includes a two year warranty and free shipping. If you order before Sunday, you also get "
    "a carrying case and a spare set of ear cushions at no extra cost.",
    "We are open from eight in the morning until nine at night on weekdays, and from ten "
    "until six on Saturdays. On Sundays the main store is closed, but the pharmacy counter "
    "stays open from eleven until four for prescriptions and pickups.",
    "Your package left our warehouse this morning and is now with the local courier. It "
    "should arrive tomorrow between ten and two, and you will get a text message about thirty "
    "minutes before the driver reaches your street, so you can be home.",
    "I have started the refund for the blue jacket you returned last week. The money goes "
    "back to the card you paid with, and depending on your bank it usually shows up within "
    "five to seven business days after we confirm the return.",
    "I found an opening with Doctor Patel next Wednesday at a quarter past three, or Thursday "
    "morning at nine. Both visits take about forty minutes, so please arrive ten minutes "
    "early to fill in the new patient form at the front desk.",
    "I can move you to the later flight on Monday, which leaves at six forty and lands just "
    "after nine. The change fee is waived for your fare, but your seat will be released, so "
    "you may want to pick a new one.",
    "Let us try restarting the router first. Unplug the power cable, wait about thirty "
    "seconds, and plug it back in. The lights on the front will blink for a minute or two, "
    "and once the middle light turns solid green your connection should be back.",
    "Your room at the harbor hotel is confirmed for three nights, checking in on the twelfth. "
    "Breakfast is included every morning from seven to ten, parking is twelve dollars a "
    "night, and late checkout until one can be added at the front desk.",
    "I have frozen the card ending in four two one eight, so no new payments can go through. "
    "A replacement card will be mailed to your home address within a week, and your automatic "
    "bill payments will move over to the new card.",
    "The standard membership is forty five dollars a month with no joining fee this season. "
    "It includes all group classes and the pool, and you can pause it for up to two months a "
    "year if you travel or get injured.",
    "Your prescription refill is ready for pickup at the Maple Street pharmacy. It will stay "
    "on hold for ten days, and since your insurance covers it in full, there is nothing to "
    "pay, just bring a photo ID when you come in.",
)

INTERRUPT_PHRASES: tuple[str, ...] = (
    "wait, stop",
    "actually I meant Tuesday",
    "sorry, what was the price again?",
    "hold on, that's not what I asked",
    "no no, cancel that",
    "can you repeat the address?",
    "stop, I need to change the date",
    "excuse me, can I talk to a real person?",
    "hang on a second",
    "no, that's the wrong order number",
    "wait, which store is that?",
    "sorry to interrupt, but I already paid",
    "okay but how much is shipping?",
    "actually, make that two tickets",
    "hey, my name is spelled differently",
    "can you slow down please?",
)

BACKCHANNEL_PHRASES: tuple[str, ...] = (
    "uh-huh",
    "okay",
    "yeah",
    "mm-hmm",
    "right",
    "sure",
    "I see",
)

BACKGROUND_LINES: tuple[str, ...] = (
    "In other news tonight, the city council approved the new budget for the harbor district.",
    "Honey, have you seen my car keys? I thought I left them on the kitchen table.",
    "Tomorrow will be mostly sunny, with a high of twenty two degrees and light winds.",
    "Did you remember to call your mother back? She said it was about the weekend.",
    "Welcome back to the show. Our next guest has just returned from a trip across the desert.",
    "I'll be right there, just give me two minutes to finish this email.",
    "The home team scores again, and the crowd is on its feet here in the final minute.",
    "Can you turn that down a little? I'm trying to listen to the radio in here.",
    "Stocks closed higher today as investors welcomed the latest report on consumer spending.",
)


@dataclass(frozen=True)
class Voice:
    """A Piper "speaker": the one voice shifted in pitch and tempo."""

    pitch_semitones: float
    length_scale: float


VOICES: tuple[Voice, ...] = (
    Voice(-4.0, 1.10),
    Voice(-3.0, 0.90),
    Voice(-1.0, 1.20),
    Voice(0.0, 1.00),
    Voice(1.5, 0.85),
    Voice(3.0, 1.05),
    Voice(4.0, 0.95),
    Voice(5.0, 1.15),
)

_VOCAL_LEVELS_DBFS: dict[str, tuple[float, float]] = {
    "cough": (-22.0, -16.0),
    "laugh": (-26.0, -20.0),
    "throat_clear": (-28.0, -22.0),
    "sneeze": (-20.0, -14.0),
    "breath": (-36.0, -30.0),
}
_NEAR_SPEECH_DBFS = (-26.0, -20.0)
_BACKCHANNEL_DBFS = (-29.0, -22.0)
_NEAR_REFERENCE_DBFS = -23.0
"""Typical near-end speech level; background speech is set relative to it."""
_ROOM_TONE_DBFS = (-66.0, -58.0)

_EARLY_INTERRUPTS = 8
"""Interrupts whose voice starts in the first second of agent speech (the hardest case for AEC)."""
_ONSET_RANGE_S = (1.0, 8.0)
_LETTERS_PER_S = 16.8
_REPLY_MARGIN_S = 1.0
"""Events end at least this long before the reply does."""
_INTERRUPT_SPAN_S = 2.0
"""Of an interrupt, only this much (after its first voiced sample) must fall inside the reply."""

_ECHO_SHARE = 0.6
_ECHO_SHARE_INTERRUPT = 0.75  # double talk: most interrupts happen over echo
_ECHO_RIR_SHARE = 0.5
_ECHO_DELAY_MS = (20.0, 450.0)
_ECHO_GAIN_DB = (-20.0, 0.0)
_NOISE_BED_SHARE = 0.3
_NOISE_SNR_DB = (5.0, 25.0)
_TELEPHONY_SHARE = 0.3
_GAIN_VARIED = 10
_GAIN_DB = (-6.0, 3.0)

# Room pools, drawn per seed: (count, rt60 range s, distance range m).
_NEAR_ROOMS = (6, (0.15, 0.35), (0.3, 0.8))
_FAR_ROOMS = (4, (0.5, 0.9), (2.5, 4.0))
_ECHO_ROOMS = (6, (0.2, 0.6), (0.3, 1.5))
_NOISE_BEDS = 10
_BED_DURATION_S = 12.0


@dataclass(frozen=True)
class _Echo:
    gain_db: float
    delay_ms: float
    room: int | None


@dataclass(frozen=True)
class _Plan:
    """Decided up front from the master RNG; audio details come from the scenario's own RNG."""

    index: int
    id: str
    label: str
    kind: str | None
    text: str | None
    voice: Voice | None
    onset_frac: float
    early: bool
    lead_s: float
    echo: _Echo | None
    bed: tuple[int, float] | None
    channel: str
    user_gain_db: float


def build_bundled_set(
    out_dir: Path,
    *,
    seed: int = 0,
    progress: bool = False,
    limit: int | None = None,
) -> Path:
    """Write the bundled set into ``out_dir`` and return the manifest's path.

    ``limit`` writes only the first scenarios, byte-identical to the same scenarios of the full set:
    the plan is always drawn for the full set, each scenario's audio has its own RNG key, and
    Piper's noise follows the synthesis order, which a prefix repeats.
    """
    t0_s = time.monotonic()
    out_dir = Path(out_dir)
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)

    plans = _plan(seed)
    if limit is not None:
        plans = plans[: max(0, limit)]
    speaker = _load_speaker(seed)
    reply_s = [reply_duration_estimate_s(t) for t in AGENT_REPLIES]
    res = _Resources(seed, out_dir)

    lines: list[str] = []
    for n, plan in enumerate(plans, start=1):
        entry = _render(plan, seed, speaker, reply_s, res, out_dir)
        lines.append(json.dumps(entry, ensure_ascii=False))
        if progress:
            print(f"[{n}/{len(plans)}] {plan.id}", file=sys.stderr, flush=True)

    manifest = out_dir / MANIFEST_NAME
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    info: dict[str, Any] = {
        "set_version": SET_VERSION,
        "seed": seed,
        "scenarios": len(plans),
        "sample_rate_hz": SAMPLE_RATE_HZ,
    }
    if limit is not None:
        info["limit"] = limit
    (out_dir / BUNDLE_INFO_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if progress:
        print(
            f"wrote {len(plans)} scenarios in {time.monotonic() - t0_s:.1f} s: {manifest}",
            file=sys.stderr,
            flush=True,
        )
    return manifest


def reply_duration_estimate_s(text: str) -> float:
    """A lower bound of how long the harness's voice takes to say ``text``.

    The project's Piper voice speaks 14.7-16.6 letters per second on :data:`AGENT_REPLIES`
    (10.3-12.9 s each); estimating from letters instead of synthesizing saves ~10 s of CPU a build.
    """
    return sum(c.isalpha() for c in text) / _LETTERS_PER_S


# --------------------------------------------------------------------------------------------
# planning


def _mask(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Exactly ``k`` of ``n`` True, at random positions: shares are exact, not just expected."""
    m = np.zeros(n, dtype=bool)
    m[rng.permutation(n)[: max(0, min(n, k))]] = True
    return m


def _cycle(rng: np.random.Generator, items: Sequence[str], n: int) -> list[str]:
    """``n`` items using each of ``items`` about equally often, in random order."""
    out: list[str] = []
    while len(out) < n:
        out.extend(items[i] for i in rng.permutation(len(items)))
    return out[:n]


def _plan(seed: int) -> list[_Plan]:
    rng = np.random.default_rng([seed, 0])
    labels = [lab for lab in LABELS for _ in range(LABEL_COUNTS[lab])]
    # Interleave the labels so any prefix (``limit``) is a mix.
    labels = [labels[i] for i in rng.permutation(len(labels))]
    n = len(labels)
    idx_of: dict[str, list[int]] = {
        lab: [i for i, x in enumerate(labels) if x == lab] for lab in LABELS
    }

    texts: dict[int, str] = {}
    kinds: dict[int, str] = {}
    for lab, pool in (
        ("interrupt", INTERRUPT_PHRASES),
        ("backchannel", BACKCHANNEL_PHRASES),
        ("background_speech", BACKGROUND_LINES),
    ):
        texts.update(zip(idx_of[lab], _cycle(rng, pool, len(idx_of[lab])), strict=True))
    noise_kinds = _cycle(rng, sounds.NOISE_EVENTS, len(idx_of["noise"]))
    kinds.update(zip(idx_of["noise"], noise_kinds, strict=True))
    for lab in sounds.VOCAL_EVENTS:
        kinds.update((i, lab) for i in idx_of[lab])

    # Onsets: stratified over the range per label, so each label covers it evenly.
    onset_frac = np.zeros(n)
    early = np.zeros(n, dtype=bool)
    for ids in idx_of.values():
        strata = (rng.permutation(len(ids)) + rng.uniform(0.0, 1.0, len(ids))) / max(1, len(ids))
        onset_frac[ids] = strata
    inter = idx_of["interrupt"]
    early[[inter[i] for i in rng.permutation(len(inter))[:_EARLY_INTERRUPTS]]] = True

    # Echo: all echo_only, most interrupts, and enough of the rest for ~60 % overall.
    has_echo = np.zeros(n, dtype=bool)
    has_echo[idx_of["echo_only"]] = True
    n_int_echo = round(_ECHO_SHARE_INTERRUPT * len(inter))
    has_echo[[inter[i] for i in np.flatnonzero(_mask(rng, len(inter), n_int_echo))]] = True
    rest = [i for i in range(n) if labels[i] not in ("echo_only", "interrupt")]
    n_rest = max(0, round(_ECHO_SHARE * n) - int(has_echo.sum()))
    has_echo[[rest[i] for i in np.flatnonzero(_mask(rng, len(rest), n_rest))]] = True
    echo_ids = np.flatnonzero(has_echo)
    rir_mask = _mask(rng, len(echo_ids), round(_ECHO_RIR_SHARE * len(echo_ids)))
    with_rir = dict(zip(echo_ids, rir_mask, strict=True))

    # echo_only spans the whole delay x gain range, ends included, in shuffled pairs.
    eo = idx_of["echo_only"]
    eo_delay_ms = np.linspace(*_ECHO_DELAY_MS, len(eo))
    eo_gain_db = np.linspace(_ECHO_GAIN_DB[1], _ECHO_GAIN_DB[0], len(eo))[rng.permutation(len(eo))]
    eo_pos = {i: k for k, i in enumerate(eo)}

    # Noise beds: the SNR is against the user event, so echo_only (no event) gets none.
    with_event = [i for i in range(n) if labels[i] != "echo_only"]
    bed_mask = _mask(rng, len(with_event), round(_NOISE_BED_SHARE * n))
    bed_ids = {with_event[i] for i in np.flatnonzero(bed_mask)}
    telephony = _mask(rng, n, round(_TELEPHONY_SHARE * n))
    gain_ids = {with_event[i] for i in np.flatnonzero(_mask(rng, len(with_event), _GAIN_VARIED))}

    plans: list[_Plan] = []
    counters: dict[str, int] = {}
    for i, lab in enumerate(labels):
        counters[lab] = counters.get(lab, 0) + 1
        echo = None
        if has_echo[i]:
            if lab == "echo_only":
                delay_ms, gain_db = eo_delay_ms[eo_pos[i]], eo_gain_db[eo_pos[i]]
            else:
                delay_ms, gain_db = rng.uniform(*_ECHO_DELAY_MS), rng.uniform(*_ECHO_GAIN_DB)
            room = int(rng.integers(0, _ECHO_ROOMS[0])) if with_rir[i] else None
            echo = _Echo(round(float(gain_db), 1), float(round(delay_ms)), room)
        bed = None
        if i in bed_ids:
            bed = (int(rng.integers(0, _NOISE_BEDS)), round(float(rng.uniform(*_NOISE_SNR_DB)), 1))
        voice = None
        if lab in ("interrupt", "backchannel"):
            voice = VOICES[int(rng.integers(0, len(VOICES)))]
        elif lab == "background_speech":
            # Keep TV/room speech within 3-6 s: no slow voices.
            fast = [v for v in VOICES if v.length_scale <= 1.05]
            voice = fast[int(rng.integers(0, len(fast)))]
        # Half the files start with real room tone before the event; early interrupts keep it short.
        lead_s = 0.0
        if rng.random() < 0.5:
            lead_s = rng.uniform(0.05, 0.25) if early[i] else rng.uniform(0.1, 0.8)
        plans.append(
            _Plan(
                index=i,
                id=f"{lab.replace('_', '-')}-{counters[lab]:03d}",
                label=lab,
                kind=kinds.get(i),
                text=texts.get(i),
                voice=voice,
                onset_frac=float(onset_frac[i]),
                early=bool(early[i]),
                lead_s=round(float(lead_s), 3),
                echo=echo,
                bed=bed,
                channel="telephony" if telephony[i] else "wideband",
                user_gain_db=round(float(rng.uniform(*_GAIN_DB)), 1) if i in gain_ids else 0.0,
            )
        )
    return plans


# --------------------------------------------------------------------------------------------
# rendering


class _Resources:
    """Rooms and noise beds, each made on first use from its own RNG key (order does not matter)."""

    def __init__(self, seed: int, out_dir: Path) -> None:
        self._seed = seed
        self._out_dir = out_dir
        self._rirs: dict[tuple[str, int], np.ndarray] = {}
        self._files: dict[tuple[str, int], str] = {}

    def rir(self, pool: str, k: int) -> np.ndarray:
        key = (pool, k)
        if key not in self._rirs:
            spec = {"near": _NEAR_ROOMS, "far": _FAR_ROOMS, "echo": _ECHO_ROOMS}[pool]
            tag = {"near": 1, "far": 2, "echo": 3}[pool]
            rng = np.random.default_rng([self._seed, tag, k])
            self._rirs[key] = sounds.room_rir(
                rng, rt60_s=float(rng.uniform(*spec[1])), distance_m=float(rng.uniform(*spec[2]))
            )
        return self._rirs[key]

    def echo_rir_path(self, k: int) -> str:
        key = ("echo", k)
        if key not in self._files:
            rel = f"audio/rir/echo-room-{k:02d}.wav"
            _write_wav(self._out_dir / rel, self.rir("echo", k))
            self._files[key] = rel
        return self._files[key]

    def bed_path(self, k: int) -> str:
        key = ("bed", k)
        if key not in self._files:
            rng = np.random.default_rng([self._seed, 4, k])
            name = sounds.AMBIENCE_BEDS[k % len(sounds.AMBIENCE_BEDS)]
            bed = sounds.ambience_bed(rng, name, duration_s=_BED_DURATION_S)
            bed = sounds.limit_peak(sounds.set_active_level(bed, -30.0))
            rel = f"audio/beds/bed-{k:02d}-{Path(name).stem}.wav"
            _write_wav(self._out_dir / rel, bed)
            self._files[key] = rel
        return self._files[key]


def _load_speaker(seed: int) -> PiperSpeaker:
    import onnxruntime

    from .piper_voice import PiperSpeaker

    # Piper's model samples noise (RandomNormalLike) from generators seeded when the session is
    # created, from onnxruntime's global seed: fixing it here, then synthesizing in a fixed order,
    # makes the speech byte-identical from run to run.
    onnxruntime.set_seed(int(seed))
    return PiperSpeaker.load()


def _render(
    plan: _Plan,
    seed: int,
    speaker: PiperSpeaker,
    reply_s: Sequence[float],
    res: _Resources,
    out_dir: Path,
) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 100, plan.index])
    entry: dict[str, Any] = {"id": plan.id, "label": plan.label}

    if plan.label == "echo_only":
        entry["agent_text"] = AGENT_REPLIES[int(rng.integers(0, len(AGENT_REPLIES)))]
    else:
        audio, voiced_sample = _user_audio(plan, rng, speaker, res)
        rel = f"audio/{plan.id}.wav"
        _write_wav(out_dir / rel, audio)
        dur_s = len(audio) / SAMPLE_RATE_HZ
        voiced_s = voiced_sample / SAMPLE_RATE_HZ
        reply, onset_s = _place_event(plan, rng, reply_s, dur_s, voiced_s)
        entry["agent_text"] = AGENT_REPLIES[reply]
        entry["user_audio"] = rel
        entry["user_onset_s"] = onset_s
        entry["speech_start_s"] = round(voiced_s, 6)
        if plan.text is not None:
            entry["user_text"] = plan.text
        entry["user_gain_db"] = plan.user_gain_db

    if plan.echo is not None:
        echo: dict[str, Any] = {"gain_db": plan.echo.gain_db, "delay_ms": plan.echo.delay_ms}
        if plan.echo.room is not None:
            echo["rir"] = res.echo_rir_path(plan.echo.room)
        entry["echo"] = echo
    else:
        entry["echo"] = None
    entry["noise"] = (
        {"audio": res.bed_path(plan.bed[0]), "snr_db": plan.bed[1]}
        if plan.bed is not None
        else None
    )
    entry["channel"] = plan.channel
    return entry


def _user_audio(
    plan: _Plan, rng: np.random.Generator, speaker: PiperSpeaker, res: _Resources
) -> tuple[np.ndarray, int]:
    """The near-end file and the sample of its first voiced (or first active) sample."""
    sr = SAMPLE_RATE_HZ
    if plan.text is not None:
        assert plan.voice is not None
        syn = speaker.synthesize(
            plan.text,
            out_rate_hz=sr,
            length_scale=plan.voice.length_scale,
            pitch_semitones=plan.voice.pitch_semitones,
        )
        dry = syn.audio
        # Piper's phoneme alignment is coarse (256-sample hops) and often starts the first word tens
        # of ms after its audio does: take the earlier of the alignment and the measured onset.
        onset = _first_active_sample(dry)
        if syn.words:
            onset = min(onset, int(syn.words[0].start_sample))
    else:
        assert plan.kind is not None
        dry = sounds.synthesize_event(plan.kind, rng, sample_rate_hz=sr)
        onset = _first_active_sample(dry)

    # The user sits close to the mic in a small room; TV, other people, most noises are farther.
    far = plan.label == "background_speech" or plan.kind in (
        "door_knock",
        "phone_ring",
        "dog_bark",
        "music",
    )
    pool, n_rooms = ("far", _FAR_ROOMS[0]) if far else ("near", _NEAR_ROOMS[0])
    wet = sounds.convolve(dry, res.rir(pool, int(rng.integers(0, n_rooms))))

    if plan.label == "background_speech":
        level_dbfs = _NEAR_REFERENCE_DBFS + rng.uniform(-15.0, -6.0)
    elif plan.label == "interrupt":
        level_dbfs = rng.uniform(*_NEAR_SPEECH_DBFS)
    elif plan.label == "backchannel":
        level_dbfs = rng.uniform(*_BACKCHANNEL_DBFS)
    elif plan.label == "noise":
        level_dbfs = rng.uniform(-30.0, -20.0)
    else:
        level_dbfs = rng.uniform(*_VOCAL_LEVELS_DBFS[plan.label])
    wet = sounds.set_active_level(wet, level_dbfs)

    lead = int(round(plan.lead_s * sr))
    tail = int(round(rng.uniform(0.15, 0.4) * sr))
    audio = np.concatenate([np.zeros(lead, np.float32), wet, np.zeros(tail, np.float32)])
    audio = audio + sounds.room_tone(rng, len(audio), level_dbfs=rng.uniform(*_ROOM_TONE_DBFS))
    return sounds.limit_peak(audio), lead + onset


def _first_active_sample(x: np.ndarray, *, rel_db: float = -40.0, frame: int = 16) -> int:
    """Start of the first 1 ms frame within ``rel_db`` of the loudest one."""
    n = len(x) // frame
    if n == 0:
        return 0
    energy = np.mean(x[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)
    return int(np.argmax(energy >= energy.max() * 10.0 ** (rel_db / 10.0))) * frame


def _place_event(
    plan: _Plan,
    rng: np.random.Generator,
    reply_s: Sequence[float],
    dur_s: float,
    voiced_s: float,
) -> tuple[int, float]:
    """A reply long enough, and the onset of the user file (s after the agent's first sample)."""
    if plan.label == "interrupt":
        # What must fit: the part of the interruption that decides (the 1.5 s miss window and more).
        needed_s = voiced_s + min(dur_s - voiced_s, _INTERRUPT_SPAN_S)
        if plan.early:
            lo_s, hi_s = 0.2, max(0.2, 0.95 - voiced_s)
        else:
            lo_s, hi_s = _ONSET_RANGE_S
    else:
        needed_s = dur_s
        lo_s, hi_s = _ONSET_RANGE_S
    longest_s = max(reply_s)
    hi_s = max(lo_s, min(hi_s, longest_s - _REPLY_MARGIN_S - needed_s))
    onset_s = round(lo_s + plan.onset_frac * (hi_s - lo_s), 3)
    fits = [i for i, r in enumerate(reply_s) if onset_s + needed_s + _REPLY_MARGIN_S <= r]
    if not fits:  # an event longer than any reply allows: the longest reply, from lo_s
        return int(np.argmax(reply_s)), round(lo_s, 3)
    return int(fits[int(rng.integers(0, len(fits)))]), onset_s


def _write_wav(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    # Quantise ourselves (round, clip) so the bytes do not depend on libsndfile's float conversion.
    pcm = np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32767.0), -32768, 32767)
    sf.write(str(path), pcm.astype(np.int16), SAMPLE_RATE_HZ, subtype="PCM_16", format="WAV")
