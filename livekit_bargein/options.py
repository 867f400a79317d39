"""Barge-in options and the named profiles (telephony, speakerphone, headset, noisy)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from .near_end import ESTIMATE_MIN_HISTORY_MS, GAIN_BOUND_MARGIN_DB

SUPPORTED_RATES_HZ = (8_000, 16_000, 24_000, 48_000)
"""Microphone and processing rates the plugin accepts (those of WebRTC's APM)."""


def check_processing_rate_hz(rate_hz: int | None, *, name: str) -> None:
    """Raise ValueError naming ``name`` unless ``rate_hz`` is a supported rate or None."""
    if rate_hz is not None and rate_hz not in SUPPORTED_RATES_HZ:
        rates = ", ".join(map(str, SUPPORTED_RATES_HZ))
        raise ValueError(f"{name} must be one of {rates} or None, got {rate_hz}")


def processing_rate_hz(mic_rate_hz: int, aec_rate_hz: int | None) -> int:
    """The rate a microphone at ``mic_rate_hz`` is processed at (``BargeInOptions.aec_rate_hz``:
    faster microphones are resampled down to it, slower ones keep their rate)."""
    return mic_rate_hz if aec_rate_hz is None else min(mic_rate_hz, aec_rate_hz)


@dataclass(frozen=True, kw_only=True)
class BargeInOptions:
    """Every knob of the engine. Names carry their unit; the defaults are the ``speakerphone``
    profile."""

    activation_threshold: float = 0.5
    """Silero probability that counts as speech while the agent is silent. Default 0.5."""
    deactivation_threshold: float = 0.35
    """Probability below which a speech run may end (offset hysteresis). Default 0.35."""
    playback_threshold_min: float = 0.8
    """Onset threshold while the agent is audible and residual echo is negligible (or the
    spectral near-end cue lifted the echo gates). Default 0.8: in same-run A/Bs on two scenario
    seeds (``--fixed-voice``) against 0.6, false yields per agent-minute 2.97 -> 2.64 and
    3.84 -> 3.04 for p50 +16 and +9 ms, p95 -29 and -1 ms (README, "Trade-off")."""
    playback_threshold_max: float = 0.9
    """Onset threshold while the agent is audible and residual echo may explain the signal."""
    echo_margin_db: float = 12.0
    """Cleaned level above the expected residual echo at which the threshold is at its minimum."""
    max_echo_removed_db: float = 12.0
    """While echo is expected, windows whose cleaned level is more than this below the raw mic
    are echo leak: a caller worth yielding to is not that far under the agent's echo."""
    echo_likeness_block: float = 0.6
    """Envelope correlation with the played audio above which the cleaned signal is echo leak."""
    near_end_share_min: float = 0.4
    """Share of the raw mic's power that no delay of the played audio explains from which
    someone else is surely there (``NearEndDetector``): the echo gates are lifted and the onset
    threshold is ``playback_threshold_min``. Bundled echo-only calls peak at 0.28; at 0.3 the
    bundled set yielded to more breaths and coughs (README); 1 turns the cue off."""
    near_end_gain_bound: bool = True
    """The near-end cue learns, per delay and sub-band, how loud the echo can be from the recent
    past (``NearEndDetector(gain_bound_margin_db=...)``): with no echo path, or a weak one, a
    caller quieter than the agent is not taken for its echo. False: the echo may always be 3 dB
    over the played audio. Read when the input is set up, like ``aec_noise_suppression``."""
    near_end_gain_bound_margin_db: float = GAIN_BOUND_MARGIN_DB
    """Margin over the learned bound (spectra fluctuate): bundled echo-only calls start to read
    as near-end from ~12 dB. A louder echo path by more than this (the volume turned up) reads
    as near-end until ``gain_history_ms`` (1.5 s) has seen it."""
    near_end_speech_min: float = 0.3
    """While the agent's echo may be in the mic, a window counts as caller speech only if Silero
    scores the near-end estimate (the mic with what the played audio explains taken out,
    ``NearEndDetector(separate=True)``) at least this: during a cough or a breath AEC3 lets the
    agent's echo through and the mix scores as speech, the caller's own sound does not. Read
    once the estimate's echo bound is learnt (each reply's first ~0.75 s it erases callers too).
    Default 0.3 (fast replay on two seeds: false yields 34 -> 23 and 37 -> 24, p50 +10 and
    +0 ms; 0.2 and 0.5 in the README). 0 turns it off, and with ``near_end_onset_prob`` None
    too the estimate is not computed; read when the input is set up, like
    ``aec_noise_suppression``."""
    near_end_estimate_history_ms: float = ESTIMATE_MIN_HISTORY_MS
    """The near-end estimate takes out only what a delay explains whose echo bound has seen the
    agent play this long (``NearEndDetector(estimate_min_history_ms=...)``). In a reply's first
    second the delay the agent's first syllable has just reached has no history, and "that
    syllable's echo, as loud as the played audio" took a caller's first word out of the
    estimate (Silero 0.01-0.05 on a caller with no echo at all), so the estimate veto
    (``near_end_speech_min``) held the onset back until the first transcribed word. 0: every
    delay, as the share. Read when the input is set up, like ``aec_noise_suppression``."""
    near_end_onset_prob: float | None = 0.98
    """Where the spectral near-end cue holds (``near_end_share_min``), a window whose near-end
    estimate Silero scores at least this counts as the caller's speech whatever AEC3's output
    scores: at a caller's onset AEC3's double-talk suppression leaves Silero 0.07-0.66 on its
    output while the estimate already scores 0.86-0.96, so the onset waited a window or two, or
    for the first word. Fast replay, five seeds (p50 mean, false yields): off 167 ms, 133; 0.98
    158 ms, 135; 0.95 155 ms, 139; 0.9 154 ms, 144; 0.8 153 ms, 154 (coughs, laughs and breaths
    score 0.8-0.85 on it). Needs the estimate, so ``near_end_speech_min`` may be 0 with it on.
    None turns it off."""
    echo_block_margin_db: float = 3.0
    """Below this margin over the residual echo no onset is possible while echo is expected."""
    onset_ms: float = 32.0
    """Speech above threshold needed to declare an onset (soft yield). Default 32 ms (one Silero
    window): the sweep in the README measured it against 64 and 128 ms."""
    offset_ms: float = 320.0
    """Silence needed to declare the end of a speech run (VAD END_OF_SPEECH). Default 320 ms."""
    min_snr_db: float = 8.0
    """Windows less than this above the tracked noise floor are not speech. Default 8 dB."""
    noise_floor_min_dbfs: float = -100.0
    """Windows quieter than this enter neither the noise floor nor the background level:
    digital silence (AEC3's suppressed output, a muted or not yet started track) says nothing
    about the room, and would pin the floor at -120 dBFS so that ``min_snr_db`` gated nothing.
    Measured against -inf (every window counts) in two same-run A/Bs: p50 130-152 vs 206-209 ms,
    false yields 2.9-3.5 vs 2.4-2.6 per agent-minute: a gate that works also ends speech runs in
    quiet gaps, so every new onset is heard (README, "What happens inside"). In the background
    level, it spread the levels over more than 20 dB, so a steady babble was never reported."""
    min_mic_dbfs: float | None = -60.0
    """Nothing is speech while the raw microphone (before echo cancellation) is under this level:
    a caller talking into a phone is 30 dB louder. Without it, AEC3's and the noise suppressor's
    output of bare room tone (-67 dBFS) scored 0.86-0.97 on Silero where the raw mic scored 0.02,
    and on a line with no noise (near-digital silence) the noise floor is too low to gate it: a
    soft yield right after the agent's audio restarted, before its echo arrived. Not the cleaned
    level: at a caller's onset AEC3 can leave -80 dBFS of a caller the raw mic holds at -20.
    None: off."""
    background_margin_db: float = 6.0
    """While the agent speaks, an onset must be this far above the recent background: the 90th
    percentile of the cleaned level over the last 4 s, outside the caller's speech runs
    (``LevelTrackerOptions``). Sound that has gone on for seconds (babble, office chatter, a
    leaking echo) is not a barge-in; a caller rises above it."""
    below_speech_level_db: float = 18.0
    """Once the caller's speech level is known, windows this far below it are ignored."""
    confirm_speech_ms: float = 700.0
    """Sustained speech-like sound that confirms an interruption without a confirming word
    (where the session's STT streams interim words, only once a word was heard in it:
    ``words_confirm_with_stt``)."""
    words_confirm_with_stt: bool = True
    """Where the session's STT streams interim words (``BargeInController.transcripts_expected``;
    a non-streaming STT's words come after the caller stops, too late to wait for), sustained
    sound confirms an interruption only once the STT has heard a word in it: a
    caller's first word arrives ~350 ms into their speech, while a crowded room's babble, which
    Silero scores 0.7-0.9, reached ``confirm_speech_ms`` with no word and stopped the reply (all
    four hard stops outside background-speech scenarios in two evaluator runs). Without words
    the agent resumes after ``max_soft_yield_ms``. False: sustained speech confirms alone, as
    without an STT."""
    confirm_words: int = 1
    """Transcript words outside the backchannel lexicon that confirm an interruption."""
    aec_wait_for_echo: bool = True
    """The echo canceller gets the played reference only once an echo path is found (see
    ``EchoCanceller(wait_for_echo=...)``): an unconverged AEC3 erases a caller who talks over the
    agent's first seconds. False: AEC3 always gets the reference."""
    mic_gain_db: float = 0.0
    """Gain applied to the microphone before anything hears it (the canceller, the near-end
    cue, Silero, the STT; clipped at full scale). The engine's operating point depends on the
    absolute level: Silero scores quiet speech lower, and the echo's worst case is set against
    the digital playback. The defaults were chosen on callers near -20 dBFS (active level);
    heard 12 dB quieter, the bundled set's p50 rises from ~150 to 250-350 ms (README, "A quieter
    microphone"). A line known to be quiet by N dB can be raised by N here. Read when the input
    is set up, like ``aec_noise_suppression``."""
    aec_noise_suppression: bool = True
    """WebRTC noise suppression after AEC3 on the input the session (Silero, the STT) hears.
    Read when the input is set up (before the session starts), not at runtime."""
    aec_rate_hz: int | None = 16_000
    """Rate the echo canceller, the near-end cue and the session's input run at: a faster
    microphone (RoomIO's 24 kHz default, or 48 kHz) is resampled down to it first and the session
    hears the cleaned audio at this rate (Silero listens at 16 kHz, STTs resample as they need).
    It costs less (``livekit-bargein bench --rate 48000`` with and without ``--native-rate``:
    4.6 vs 5.0 % of a core), and 16 kHz is what the evaluator measures. A slower microphone
    (8 kHz) keeps its rate. None: the microphone's own rate. Read when the input is set up, like
    ``aec_noise_suppression``."""
    blocked_speech_words: int = 1
    """Words (outside the backchannel lexicon, and not the agent's own) that interrupt without a
    soft yield when the echo gate held back speech-like sound in the last
    ``blocked_speech_window_ms`` (the canceller left too little of the caller to pass the raised
    threshold, but the STT heard them). 0 turns this path off. One word, not two: same-run A/B,
    p95 359 vs 608 ms, the false yields it added were all background speech (README)."""
    near_end_blocked_speech_words: int = 1
    """``blocked_speech_words`` when the held-back sound also carried the spectral near-end cue
    (``near_end_share_min``): it was surely not the agent's echo, so one word confirms."""
    blocked_speech_window_ms: float = 1500.0
    """How recent the held-back speech must be for ``blocked_speech_words``."""
    own_words_share: float = 0.6
    """A transcript with at least this share of words from what the agent just played is its
    own echo, transcribed: it never confirms anything."""
    resume_after_ms: float = 450.0
    """Quiet after an unconfirmed onset before the agent resumes. Default 450 ms."""
    max_soft_yield_ms: float = 2500.0
    """Longest hold without confirmation; then the agent resumes. Default 2500 ms."""
    wordless_backoff_ms: float = 10_000.0
    """Where the session transcribes the caller, a hold that ran to ``max_soft_yield_ms`` with
    no word in it was a crowded room's babble or a wordless bed, and it goes on: for this long
    afterwards an onset does not pause the agent, it only counts as held-back speech, so a
    caller's first word still interrupts (``blocked_speech_words``, ~350 ms). Without it the
    agent stopped for 2.5 s every few seconds of babble. 0 turns it off."""
    echo_tail_ms: float = 500.0
    """How long after the agent's last audible sample its echo is still expected."""
    cough_reject_score: float = 0.6
    """Events scoring above this on cough/laugh likeness never confirm without words."""
    speech_like_min: float = 0.5
    """Sustained sound confirms without words only if it scores at least this speech-like."""
    backchannel_words: frozenset[str] = frozenset(
        {
            "uh-huh", "uh", "huh", "mhm", "mm-hmm", "mm", "hmm", "mmhmm", "hm", "okay", "ok",
            "yeah", "yep", "yes", "right", "sure", "alright", "i", "see", "got", "it", "cool",
            "ah", "oh", "aha", "uh-uh", "gotcha", "nice", "great", "good",
        }
    )
    """Words that alone never confirm an interruption (lowercase, punctuation stripped)."""

    def __post_init__(self) -> None:
        for name in ("activation_threshold", "deactivation_threshold", "playback_threshold_min",
                     "playback_threshold_max", "cough_reject_score", "speech_like_min",
                     "echo_likeness_block", "near_end_share_min", "near_end_speech_min"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {v}")
        if self.deactivation_threshold > self.activation_threshold:
            raise ValueError("deactivation_threshold must not exceed activation_threshold")
        if self.playback_threshold_min > self.playback_threshold_max:
            raise ValueError("playback_threshold_min must not exceed playback_threshold_max")
        if not math.isfinite(self.mic_gain_db):
            raise ValueError(f"mic_gain_db must be finite, got {self.mic_gain_db}")
        for f in fields(self):
            # every other _db is a margin or a distance; the mic's gain may take either sign
            v = getattr(self, f.name)
            signed = f.name == "mic_gain_db"
            if not signed and f.name.endswith(("_ms", "_db")) and v < 0:
                raise ValueError(f"{f.name} must be >= 0, got {v}")
            if f.name.endswith("_dbfs") and v is not None and not (v <= 0):  # NaN too
                raise ValueError(f"{f.name} is a level in dBFS, must be <= 0, got {v}")
        if self.confirm_words < 1:
            raise ValueError("confirm_words must be >= 1")
        if self.blocked_speech_words < 0:
            raise ValueError("blocked_speech_words must be >= 0")
        if self.near_end_blocked_speech_words < 1:
            raise ValueError("near_end_blocked_speech_words must be >= 1")
        if self.near_end_onset_prob is not None and not 0.0 <= self.near_end_onset_prob <= 1.0:
            raise ValueError(
                f"near_end_onset_prob must be within [0, 1] or None, got {self.near_end_onset_prob}"
            )
        check_processing_rate_hz(self.aec_rate_hz, name="aec_rate_hz")
        if not 0.0 < self.own_words_share <= 1.0:
            raise ValueError(f"own_words_share must be within (0, 1], got {self.own_words_share}")

    @property
    def separates_near_end(self) -> bool:
        """Whether the decision reads Silero on the near-end estimate."""
        return self.near_end_speech_min > 0.0 or self.near_end_onset_prob is not None

    def updated(self, **changes: Any) -> BargeInOptions:
        """A copy with ``changes`` applied (validated); unknown names raise TypeError."""
        return replace(self, **changes)


PROFILES: dict[str, BargeInOptions] = {
    # A laptop or phone speaker near the mic: loud echo, so thresholds rise while playing.
    "speakerphone": BargeInOptions(),
    # 8 kHz line, far-end echo from the handset or hybrid, codec noise: a little slower onset.
    "telephony": BargeInOptions(onset_ms=64.0, min_snr_db=6.0, playback_threshold_min=0.75,
                                echo_tail_ms=600.0),
    # Little acoustic echo: lower thresholds while playing, faster onset.
    "headset": BargeInOptions(playback_threshold_min=0.7, playback_threshold_max=0.85,
                              onset_ms=48.0, echo_tail_ms=200.0),
    # Loud background: stricter level gates and longer confirmation.
    "noisy": BargeInOptions(min_snr_db=12.0, below_speech_level_db=12.0, onset_ms=96.0,
                            confirm_speech_ms=900.0, playback_threshold_min=0.85),
}


def profile(name: str, **overrides: Any) -> BargeInOptions:
    """The named profile, with ``overrides`` applied."""
    try:
        base = PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile '{name}' (known: {', '.join(PROFILES)})") from None
    return base.updated(**overrides) if overrides else base
