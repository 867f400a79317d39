"""The barge-in decision: a pure state machine, frames and features in, decisions out.

No asyncio, no LiveKit objects, no wall clock: time is ``t_ms`` derived from sample counts by the
caller. One :class:`Observation` per VAD analysis window (32 ms); transcripts arrive through
:meth:`BargeInController.on_transcript`; the reply's state through :meth:`set_reply_active`.

Per window the controller answers two questions:

* Is the caller speaking (onset/offset hysteresis)? This drives LiveKit's VAD events, so turn
  detection and STT segmentation keep working.
* What should the agent's audio do? ``SOFT_YIELD`` (pause within one output frame) on a credible
  onset while a reply is active; ``INTERRUPT`` (stop, clear, cancel the LLM) once the evidence is
  in; ``RESUME`` from the exact paused sample when it was not an interruption.

Evidence, and why each piece:

* Silero probability on the echo-cancelled signal, against a threshold that rises while the agent is
  audible by how much of the cleaned signal the residual echo could explain (``level_db`` vs
  ``residual_echo_db``): residual echo after AEC3 scores up to ~0.5 on Silero, real near-end speech
  in double talk ~0.55-1.0.
* Silero on the near-end estimate (the raw mic with what the played audio explains taken out,
  ``near_end_prob``): during a cough AEC3 lets the agent's echo through and the mix scores as
  speech, the cough alone does not; while echo is possible a window needs both. Conversely, where
  the spectral cue says the agent's audio explains little of the mic, an estimate scoring at least
  ``near_end_onset_prob`` is speech on its own: at a caller's onset AEC3's double-talk
  suppression keeps its output's score low.
* Level gates: the tracked noise floor (energy far below it is not the caller) and, once known, the
  caller's own speech level (distant TV/background voices are quieter than the person on the call).
* Confirmation: transcript words outside a backchannel lexicon (lexical evidence is what tells
  "okay" from "wait"), or sustained speech-like sound that is neither cough- nor laugh-like
  (harmonicity, spectral flatness and burstiness; see ``features.EventEvidence``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from .features import EventEvidence, FrameFeatures, LevelTracker
from .options import BargeInOptions


class Action(str, Enum):
    NONE = "none"
    SOFT_YIELD = "soft_yield"
    RESUME = "resume"
    INTERRUPT = "interrupt"


class ControllerState(str, Enum):
    LISTENING = "listening"
    """No reply is active: the caller has the floor."""
    SPEAKING = "speaking"
    """A reply is active; watching for a barge-in."""
    SOFT_YIELD = "soft_yield"
    """Paused on a credible onset, gathering evidence."""
    INTERRUPTED = "interrupted"
    """Hard-interrupted; waits for the reply to end."""


@dataclass(frozen=True)
class Observation:
    """One analysis window of the echo-cancelled microphone."""

    t_ms: float
    """End of the window, from sample counts."""
    window_ms: float
    speech_prob: float
    level_db: float
    """Level of the echo-cancelled window, dBFS."""
    agent_audible: bool
    """The agent's (aligned) reference was active during the window."""
    residual_echo_db: float | None = None
    """Expected residual echo left in the cleaned window (None: unknown, e.g. no reference)."""
    double_talk: bool = False
    raw_level_db: float | None = None
    """Level of the raw microphone over the window (before echo cancellation), dBFS."""
    echo_likeness: float | None = None
    """How closely the cleaned signal's envelope follows the played audio (0..1)."""
    aec_unsettled: bool = False
    """The canceller is re-converging (its residual estimate is not to be trusted)."""
    near_end_over_echo: bool = False
    """The raw microphone is clearly louder than the echo the path explains (level cue)."""
    near_end_share: float | None = None
    """Share of the raw microphone's power that no delay of the played audio explains
    (spectral cue, needs neither the echo path nor AEC3; None: unknown)."""
    features: FrameFeatures | None = None
    near_end_prob: float | None = None
    """Silero on the near-end estimate (the mic with what the played audio explains taken out,
    ``NearEndDetector(separate=True)``), its latest window (~40 ms behind); None: not scored."""


@dataclass(frozen=True)
class Decision:
    t_ms: float
    action: Action
    reason: str
    state: ControllerState
    speaking: bool
    """Caller speech state after this window (drives VAD events)."""
    speech_started: bool
    speech_ended: bool
    threshold: float
    speech_ms: float
    silence_ms: float


_BLOCKED = 1.01  # a threshold no probability reaches
_WORD_RE = re.compile(r"[a-z0-9']+(?:-[a-z0-9']+)*")


def own_words_share(words: Sequence[str], agent_words: Sequence[str]) -> float:
    """Share of ``words`` that the agent itself just said (0 when it said nothing)."""
    if not words or not agent_words:
        return 0.0
    said = set(agent_words)
    return sum(1 for w in words if w in said) / len(words)


def words_of(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


@dataclass
class _Event:
    start_ms: float
    evidence: EventEvidence = field(default_factory=EventEvidence)
    words: list[str] = field(default_factory=list)
    final: bool = False
    speech_ms: float = 0.0
    quiet_ms: float = 0.0


class BargeInController:
    """Pure barge-in state machine. Feed it windows in time order."""

    def __init__(self, options: BargeInOptions | None = None) -> None:
        self.options = options or BargeInOptions()
        self.levels = LevelTracker()
        self.state = ControllerState.LISTENING
        self._speaking = False
        self._above_ms = 0.0
        self._speech_ms = 0.0
        self._silence_ms = 0.0
        self._last_audible_ms: float | None = None
        self._reply_active = False
        self._event: _Event | None = None
        self._pending: list[tuple[float, Action, str]] = []  # actions raised between windows
        self._held_back_ms: float | None = None  # last speech-like window the echo gate blocked
        self._near_end_held_ms: float | None = None  # ... of those, with the spectral cue
        self._backoff_until_ms: float | None = None  # onsets hold back, not pause (babble)
        self.yields = 0
        self.resumes = 0
        self.interrupts = 0
        self.transcripts_expected = False
        """The session's STT streams the caller's words as they come (the glue sets it): see
        ``words_confirm_with_stt``."""

    # -- inputs ---------------------------------------------------------------------------------

    def update_options(self, options: BargeInOptions) -> None:
        self.options = options

    def set_reply_active(self, active: bool, *, t_ms: float) -> None:
        """A reply (speech handle) started or ended; ends any soft yield or interruption."""
        if active == self._reply_active:
            return
        self._reply_active = active
        self._event = None
        self._held_back_ms = None
        self._near_end_held_ms = None
        self.state = ControllerState.SPEAKING if active else ControllerState.LISTENING

    def reset_speech(self) -> None:
        """Forget the caller-speech run (LiveKit's VAD flush): continued speech starts anew."""
        self._speaking = False
        self._above_ms = 0.0
        self._speech_ms = 0.0
        self._silence_ms = 0.0

    def on_transcript(
        self,
        text: str,
        *,
        is_final: bool,
        t_ms: float,
        agent_words: Sequence[str] = (),
    ) -> Decision | None:
        """An interim or final transcript of the caller's current utterance.

        ``agent_words``: what the agent played in the last seconds; a transcript made mostly of
        them is the agent's own echo, transcribed, and confirms nothing.
        """
        o = self.options
        words = words_of(text)
        if words and own_words_share(words, agent_words) >= o.own_words_share:
            return None
        ev = self._event
        if ev is None and self.state is ControllerState.SPEAKING:
            content = [w for w in words if w not in o.backchannel_words]
            needed = o.blocked_speech_words
            if (
                self._near_end_held_ms is not None
                and t_ms - self._near_end_held_ms <= o.blocked_speech_window_ms
            ):
                # the held-back sound was surely not the agent's: one word is enough
                needed = min(needed, o.near_end_blocked_speech_words)
            if (
                o.blocked_speech_words > 0
                and len(content) >= needed
                and self._held_back_ms is not None
                and t_ms - self._held_back_ms <= o.blocked_speech_window_ms
            ):
                # speech the echo gate held back, and the STT heard words in it: the caller
                return self._interrupt(t_ms, f"words after held-back speech: {len(content)}")
            return None
        if ev is None or self.state is not ControllerState.SOFT_YIELD:
            return None  # words without an acoustic onset: background or echo, not the caller
        ev.words = words
        ev.final = ev.final or is_final
        if self._confirming_words(ev) >= self.options.confirm_words:
            # counts, never the words: reasons go to logs and the room (personal data)
            return self._interrupt(t_ms, f"words: {self._confirming_words(ev)} non-backchannel")
        if is_final and ev.quiet_ms > 0:
            # a complete backchannel and the caller has stopped: no reason to keep holding
            return self._resume(t_ms, f"backchannel: {len(ev.words)} word(s)")
        return None

    def observe(self, obs: Observation) -> Decision:
        o = self.options
        dt = obs.window_ms
        if obs.agent_audible:
            self._last_audible_ms = obs.t_ms
        echo_possible = self._echo_possible(obs)
        thr = self._threshold(obs, echo_possible)
        if obs.level_db >= o.noise_floor_min_dbfs:
            self.levels.push(obs.level_db)
        gate_ok, gate_reason = self._level_gate(obs.level_db, obs.raw_level_db)
        if gate_ok and self.state is ControllerState.SPEAKING:
            gate_ok = self._above_background(obs.level_db)
        near_end = self._near_end(obs)
        prob = obs.speech_prob
        if (
            near_end
            and o.near_end_onset_prob is not None
            and obs.near_end_prob is not None
            and obs.near_end_prob >= o.near_end_onset_prob
        ):
            # the agent's audio explains little of the mic and the caller alone scores as speech:
            # AEC3's double-talk suppression is what keeps its output's score low
            prob = max(prob, obs.near_end_prob)
        is_speech = prob >= thr and gate_ok
        is_quiet = prob < o.deactivation_threshold or not gate_ok
        if (
            is_speech
            and obs.near_end_prob is not None
            and obs.near_end_prob < o.near_end_speech_min
            and echo_possible
        ):
            # AEC3 lets the agent's echo through while a caller coughs or breathes: the mix
            # scores as speech; the caller's own sound, without the echo, does not
            is_speech, is_quiet = False, True
        if (
            not is_speech
            # the raw-microphone cues hold whatever level AEC3 left (it may have erased it)
            and (gate_ok or near_end or obs.near_end_over_echo)
            and (
                obs.speech_prob >= o.activation_threshold
                or obs.near_end_over_echo
                or near_end
                or (
                    # the caller alone scores as speech where AEC3's output does not
                    obs.near_end_prob is not None
                    and obs.near_end_prob >= o.activation_threshold
                    and o.near_end_speech_min > 0.0
                )
            )
            and self.state is ControllerState.SPEAKING
        ):
            # Speech-like, but under the raised threshold; or the raw mic clearly over the echo
            # the path explains while AEC3's double-talk suppression garbles the caller so
            # that Silero scores them low (seen: 0.2-0.4 on a caller at -17 dBFS); or sound
            # no delay of the agent's audio explains, even where AEC3 erased it (-120 dBFS).
            self._held_back_ms = obs.t_ms
            if near_end:
                self._near_end_held_ms = obs.t_ms

        # -- caller speech hysteresis (VAD events) --
        started = ended = False
        if is_speech:
            self._above_ms += dt
        elif is_quiet:
            self._above_ms = 0.0
        if not self._speaking:
            if self._above_ms >= o.onset_ms:
                self._speaking, started = True, True
                self._speech_ms = self._above_ms
                self._silence_ms = 0.0
        else:
            if is_quiet:
                self._silence_ms += dt
                if self._silence_ms >= o.offset_ms:
                    self._speaking, ended = False, True
                    self._speech_ms = 0.0
            else:
                self._silence_ms = 0.0
                self._speech_ms += dt
        if self._speaking and is_speech:
            self.levels.push_speech(obs.level_db)
        if (
            not self._speaking
            and self.state is not ControllerState.SOFT_YIELD
            and obs.level_db >= o.noise_floor_min_dbfs
        ):
            # digital silence says nothing of the room here either: counted in, it spread the
            # background's levels over 20 dB, so a babble bed never became the background
            self.levels.push_background(obs.level_db)

        # -- the agent's audio --
        action, reason = Action.NONE, ""
        watching = self._reply_active and self.state is ControllerState.SPEAKING
        if watching and self._backoff_until_ms is not None and obs.t_ms < self._backoff_until_ms:
            # wordless babble goes on around the caller: no pause, their words will tell (every
            # speech window, not only onsets: in babble a caller rarely starts a new speech run)
            if is_speech:
                self._held_back_ms = obs.t_ms
        elif started and watching:
            # the onset windows are part of the event: they count toward sustained speech
            self._event = _Event(start_ms=obs.t_ms - self._above_ms, speech_ms=self._above_ms)
            self.state = ControllerState.SOFT_YIELD
            self.yields += 1
            action = Action.SOFT_YIELD
            reason = f"onset p={obs.speech_prob:.2f} thr={thr:.2f} level={obs.level_db:.0f}dB"
        elif self.state is ControllerState.SOFT_YIELD and self._event is not None:
            action, reason = self._while_held(obs, is_speech, is_quiet)

        return self._decision(
            obs.t_ms, action, reason, started=started, ended=ended, threshold=thr
        )

    # -- internals ------------------------------------------------------------------------------

    def _echo_possible(self, obs: Observation) -> bool:
        return obs.agent_audible or (
            self._last_audible_ms is not None
            and obs.t_ms - self._last_audible_ms <= self.options.echo_tail_ms
        )

    def _threshold(self, obs: Observation, echo_possible: bool) -> float:
        o = self.options
        if not echo_possible:
            return o.activation_threshold
        if self._near_end(obs):
            # The mic holds sound no delay of the played audio explains. The gates below judge
            # AEC3's output against its echo estimates, which are pessimistic before the path
            # is known and wrong while AEC3 re-converges: they would only hold a caller back.
            return o.playback_threshold_min
        if (
            obs.raw_level_db is not None
            and obs.raw_level_db - obs.level_db > o.max_echo_removed_db
        ):
            # the canceller removed most of what the mic heard: the rest is leak, not a caller
            return _BLOCKED
        if obs.aec_unsettled and not obs.near_end_over_echo:
            return _BLOCKED
        if obs.echo_likeness is not None and obs.echo_likeness >= o.echo_likeness_block:
            # what is left follows the agent's syllables: leaked echo
            return _BLOCKED
        if obs.residual_echo_db is None:
            return o.playback_threshold_max
        margin_db = obs.level_db - obs.residual_echo_db
        if margin_db < o.echo_block_margin_db:
            # the cleaned window is no louder than the echo that leaks: nothing to hear there
            return _BLOCKED
        span = o.echo_margin_db - o.echo_block_margin_db
        frac = min(1.0, (margin_db - o.echo_block_margin_db) / span) if span > 0 else 1.0
        hi, lo = o.playback_threshold_max, o.playback_threshold_min
        return hi - frac * (hi - lo)

    def _near_end(self, obs: Observation) -> bool:
        share = obs.near_end_share
        return share is not None and share >= self.options.near_end_share_min

    def needs_speech_prob(self, level_db: float) -> bool:
        """Whether the next window's Silero probability can change anything.

        Under the level gate a window is quiet whatever Silero says, so the caller may skip
        the model (the largest per-window cost) and pass ``speech_prob=0``. Not while a soft
        yield weighs its evidence: that averages the probability of every window.
        """
        if self.state is ControllerState.SOFT_YIELD:
            return True
        return self._level_gate(level_db)[0]

    def _level_gate(self, level_db: float, raw_level_db: float | None = None) -> tuple[bool, str]:
        o = self.options
        # the raw mic (AEC3's output may hold a suppressed caller far under it)
        raw_min = o.min_mic_dbfs
        if raw_min is not None and raw_level_db is not None and raw_level_db < raw_min:
            return False, "raw mic under min_mic_dbfs"
        floor = self.levels.noise_floor_db
        if floor is not None and level_db < floor + o.min_snr_db:
            return False, "below noise floor"
        speech = self.levels.speech_level_db
        if speech is not None and level_db < speech - o.below_speech_level_db:
            return False, "below caller level"
        return True, ""

    def _above_background(self, level_db: float) -> bool:
        background = self.levels.background_db
        return background is None or level_db >= background + self.options.background_margin_db

    def _confirming_words(self, ev: _Event) -> int:
        return sum(1 for w in ev.words if w not in self.options.backchannel_words)

    def _while_held(self, obs: Observation, is_speech: bool, is_quiet: bool) -> tuple[Action, str]:
        o = self.options
        ev = self._event
        assert ev is not None
        if obs.features is not None:
            ev.evidence.push(obs.features, obs.speech_prob)
        if is_speech:
            ev.speech_ms += obs.window_ms
            ev.quiet_ms = 0.0
        elif is_quiet:
            ev.quiet_ms += obs.window_ms
        held_ms = obs.t_ms - ev.start_ms
        wordless = self.transcripts_expected and o.words_confirm_with_stt and not ev.words
        if ev.speech_ms >= o.confirm_speech_ms and not wordless and self._speech_like(ev):
            d = self._interrupt(obs.t_ms, f"sustained speech {ev.speech_ms:.0f}ms")
            return d.action, d.reason
        if ev.quiet_ms >= o.resume_after_ms and self._confirming_words(ev) < o.confirm_words:
            self._unconfirmed_speech(obs.t_ms, ev)
            d = self._resume(obs.t_ms, f"quiet {ev.quiet_ms:.0f}ms, {len(ev.words)} word(s)")
            return d.action, d.reason
        if held_ms >= o.max_soft_yield_ms and self._confirming_words(ev) < o.confirm_words:
            if wordless and o.wordless_backoff_ms > 0:
                self._backoff_until_ms = obs.t_ms + o.wordless_backoff_ms
            self._unconfirmed_speech(obs.t_ms, ev)
            d = self._resume(obs.t_ms, f"held {held_ms:.0f}ms without confirmation")
            return d.action, d.reason
        return Action.NONE, ""

    def _unconfirmed_speech(self, t_ms: float, ev: _Event) -> None:
        # The agent resumes over speech it heard and could not confirm. Words the STT sends now
        # (a non-streaming STT's come only after the caller stops) are held-back speech's words:
        # they still interrupt (``blocked_speech_words``).
        if ev.speech_ms > 0.0 and not ev.words:
            self._held_back_ms = t_ms

    def _speech_like(self, ev: _Event) -> bool:
        # sustained sound confirms only when it is voiced speech, not a cough bout or a laugh
        e = ev.evidence
        if e.window_count == 0:
            return False
        nonspeech = max(e.cough_like_score(), e.laugh_like_score())
        return nonspeech < self.options.cough_reject_score and (
            e.speech_like_score() >= self.options.speech_like_min
        )

    def _interrupt(self, t_ms: float, reason: str) -> Decision:
        self.state = ControllerState.INTERRUPTED
        self.interrupts += 1
        self._event = None
        return self._decision(t_ms, Action.INTERRUPT, reason)

    def _resume(self, t_ms: float, reason: str) -> Decision:
        self.state = ControllerState.SPEAKING
        self.resumes += 1
        self._event = None
        return self._decision(t_ms, Action.RESUME, reason)

    def _decision(
        self,
        t_ms: float,
        action: Action,
        reason: str,
        *,
        started: bool = False,
        ended: bool = False,
        threshold: float = float("nan"),
    ) -> Decision:
        return Decision(
            t_ms=t_ms,
            action=action,
            reason=reason,
            state=self.state,
            speaking=self._speaking,
            speech_started=started,
            speech_ended=ended,
            threshold=threshold,
            speech_ms=self._speech_ms,
            silence_ms=self._silence_ms,
        )
