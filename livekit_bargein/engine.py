"""``BargeIn``: wires the taps, the VAD and the controller into an ``AgentSession``.

The plugin owns the interruption decision. LiveKit 1.8.9 would otherwise interrupt on its own from
three places: the VAD path (``min_duration``), the final-transcript path and the user-turn commit.
All three are gated by ``interruption["min_words"]`` while a reply is active and not yet interrupted
(``AgentActivity._interrupt_by_audio_activity`` and ``on_end_of_turn``), so ``turn_handling()`` sets
it to :data:`BLOCK_MIN_WORDS`; LiveKit's own pause/resume (``resume_false_interruption``) is turned
off. Once the plugin interrupts a reply, LiveKit commits the caller's turn as usual.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from livekit import rtc
from livekit.agents import NOT_GIVEN, AgentSession
from livekit.agents.utils import is_given
from livekit.agents.voice import io

from .aec import AecFrame
from .context import DEFAULT_NOTE_TEMPLATE
from .conversation import ConversationKeeper
from .decision import (
    Action,
    BargeInController,
    ControllerState,
    Decision,
    Observation,
    words_of,
)
from .echo_check import EchoLikeness
from .features import analyze_window
from .log import logger
from .options import BargeInOptions, profile
from .taps import EchoCancelledInput, PlaybackTap
from .turn_detector import BargeInTurnDetector
from .vad import BargeInVAD, NearEndScorer

BLOCK_MIN_WORDS = 1_000_000
"""``min_words`` that no transcript reaches: LiveKit never interrupts an active reply itself."""

_REF_ACTIVE_DB = -60.0
_UNSETTLED_FRAMES = 150  # 1.5 s of 10 ms frames after a re-alignment
_NEAR_END_MARGIN_DB = 6.0


@dataclass(frozen=True)
class EchoState:
    agent_audible: bool
    residual_echo_db: float | None
    double_talk: bool
    raw_level_db: float | None = None
    echo_likeness: float | None = None
    aec_unsettled: bool = False
    near_end_over_echo: bool = False
    near_end_share: float | None = None


@dataclass(frozen=True)
class WindowRecord:
    """What the engine saw and decided for one VAD window (the ``"window"`` event)."""

    observation: Observation
    decision: Decision
    noise_floor_db: float | None
    speech_level_db: float | None
    background_db: float | None = None
    """The steady background an onset must rise above while the agent speaks (None: none)."""


EventTypes = Literal["window", "decision"]
"""``"window"``: a :class:`WindowRecord` per analysis window; ``"decision"``: every
:class:`Decision` that acts (soft yield, resume, interrupt)."""


@dataclass
class BargeInStats:
    soft_yields: int = 0
    resumes: int = 0
    interrupts: int = 0
    last_time_to_yield_ms: float | None = None


class BargeIn(rtc.EventEmitter[EventTypes]):
    """Barge-in for one ``AgentSession``.

    Emits ``"window"`` (:class:`WindowRecord`) for every analysis window and ``"decision"``
    (:class:`Decision`) for every soft yield, resume and interrupt; the debug trace and the
    playground publisher listen to these.

    Example:
        bargein = BargeIn(profile="speakerphone")
        session = AgentSession(vad=bargein.vad, stt=..., llm=..., tts=...,
                               turn_handling=bargein.turn_handling(), aec_warmup_duration=None)
        await session.start(agent, room=ctx.room)
        bargein.attach(session)
    """

    def __init__(
        self,
        *,
        profile: str = "speakerphone",
        options: BargeInOptions | None = None,
        echo_cancellation: bool = True,
        noise_suppression: bool | None = None,
        note_template: str | None = DEFAULT_NOTE_TEMPLATE,
    ) -> None:
        super().__init__()
        self.profile = profile
        self.options = options if options is not None else _profile(profile)
        self.controller = BargeInController(self.options)
        self.vad = BargeInVAD(self)
        self.stats = BargeInStats()
        self.decisions: deque[Decision] = deque(maxlen=1024)
        self.conversation = ConversationKeeper(note_template=note_template)
        self._turn_detectors: list[BargeInTurnDetector] = []
        """Heard text and unsaid tail of interrupted replies; the next turn's note."""
        self._echo_cancellation = echo_cancellation
        self._noise_suppression = noise_suppression
        self._tap: PlaybackTap | None = None
        self._input: EchoCancelledInput | None = None
        self._session: AgentSession | None = None
        self._active_speeches: set[Any] = set()
        self._last_t_ms = 0.0
        self._clear_turn_on_backchannel_until_ms = -1.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._echo_likeness = EchoLikeness()
        self._recent: deque[AecFrame] = deque(maxlen=8)
        self._aec_frames = 0
        self._aec_realigned_at: int | None = None
        self._near_end_scorer = NearEndScorer()
        self._echo_frames_left = 0  # 10 ms frames for which the agent's echo may still arrive

    # -- configuration ----------------------------------------------------------------------------

    def turn_handling(
        self, *, turn_detection: Any = "bargein", **endpointing: Any
    ) -> dict[str, Any]:
        """``AgentSession(turn_handling=...)`` that leaves interruption decisions to the plugin.

        ``turn_detection="bargein"`` (default) is :class:`BargeInTurnDetector` without an inner
        model; pass ``self.turn_detector(inner=MultilingualModel())`` to wrap LiveKit's, or any
        LiveKit mode (``"vad"``, ``"stt"``) to use that instead.
        """
        if turn_detection == "bargein":
            turn_detection = self.turn_detector()
        th: dict[str, Any] = {
            "turn_detection": turn_detection,
            "interruption": {
                "mode": "vad",
                "min_words": BLOCK_MIN_WORDS,
                "resume_false_interruption": False,
            },
        }
        if endpointing:
            th["endpointing"] = endpointing
        return th

    def turn_detector(self, *, inner: Any | None = None) -> BargeInTurnDetector:
        """A barge-in-aware turn detector that follows this plugin's options."""
        detector = BargeInTurnDetector(self.options, inner=inner)
        self._turn_detectors.append(detector)
        return detector

    def update_options(self, *, profile: str | None = None, **changes: Any) -> None:
        """Switch profile and/or change options at runtime (validated; from the next window on)."""
        base = _profile(profile) if profile is not None else self.options
        self.options = base.updated(**changes) if changes else base
        if profile is not None:
            self.profile = profile
        self.controller.update_options(self.options)
        for detector in self._turn_detectors:
            detector.update_options(self.options)
        if self._input is not None:
            self._input.set_wait_for_echo(self.options.aec_wait_for_echo)

    # -- wiring -----------------------------------------------------------------------------------

    def wrap_output(self, out: io.AudioOutput) -> io.AudioOutput:
        self._tap = PlaybackTap(out)
        self._tap.on_segment_start = self._on_segment_start
        self._tap.on_playback_record = self.conversation.on_playback
        return self._tap

    def wrap_input(self, mic: io.AudioInput) -> io.AudioInput:
        self._input = EchoCancelledInput(
            mic,
            tap=self._tap if self._echo_cancellation else None,
            noise_suppression=(
                self.options.aec_noise_suppression
                if self._noise_suppression is None
                else self._noise_suppression
            ),
            on_frame=self.feed_aec_frame,
            wait_for_echo=self.options.aec_wait_for_echo,
            near_end_gain_bound_db=(
                self.options.near_end_gain_bound_margin_db
                if self.options.near_end_gain_bound
                else None
            ),
            separate_near_end=self.options.separates_near_end,
            near_end_estimate_history_ms=self.options.near_end_estimate_history_ms,
            processing_rate_hz=self.options.aec_rate_hz,
            mic_gain_db=self.options.mic_gain_db,
        )
        return self._input

    def feed_aec_frame(self, f: AecFrame, ref_level_db: float) -> None:
        """One processed 10 ms microphone frame (called by ``EchoCancelledInput``)."""
        self._recent.append(f)
        self._echo_likeness.push(f.clean_level_db, ref_level_db)
        self._aec_frames += 1
        if f.far_end_active or f.ref_level_db > _REF_ACTIVE_DB:
            self._echo_frames_left = int(self.options.echo_tail_ms // 10) + 1
        elif self._echo_frames_left:
            self._echo_frames_left -= 1
        if f.near_end is not None:
            self._near_end_scorer.push(
                f.near_end,
                rate_hz=len(f.clean) * 100,
                score=self._echo_frames_left > 0 and f.near_end_trusted,
                needs_model=self.needs_speech_prob,
            )
        if f.reference_moved:
            # AEC3 re-converges after the reference moves: its estimates lag the leak
            self._aec_realigned_at = self._aec_frames

    def attach(self, session: AgentSession) -> None:
        """Hook the session: wrap its audio (unless already wrapped) and follow its events.

        Call it before ``session.start()`` (recommended: the greeting's unsaid text is kept too)
        or right after it. Before start, the audio that RoomIO creates during start is wrapped
        when the first reply is created, before it plays.
        """
        self._session = session
        # the plugin owns the decision, even if the session was built without turn_handling()
        session.options.interruption["min_words"] = BLOCK_MIN_WORDS
        session.options.interruption["resume_false_interruption"] = False
        session.on("speech_created", self._on_speech_created)
        session.on("user_input_transcribed", self._on_transcribed)
        session.on("agent_state_changed", lambda _ev: self._wire(session))
        self.conversation.attach(session)
        self._wire(session)
        if (current := session.current_speech) is not None:
            self._track_speech(current)

    def _wire(self, session: AgentSession) -> None:
        """Wrap what exists of the session's audio and agent (idempotent, cheap)."""
        if self._tap is None and session.output.audio is not None:
            session.output.audio = self.wrap_output(session.output.audio)
        if self._input is None and session.input.audio is not None:
            session.input.audio = self.wrap_input(session.input.audio)
        elif self._input is not None and self._tap is not None and self._echo_cancellation:
            self._input._tap = self._tap
        self.conversation.wrap_current(session)
        if _transcribes(session):
            self.controller.transcripts_expected = True

    @property
    def echo_delay_ms(self) -> float | None:
        """The canceller's current bulk echo-delay estimate; None while no echo path is found.

        Read-only, for traces: when it appears, AEC3 starts getting the reference.
        """
        return self._recent[-1].delay_ms if self._recent else None

    @property
    def echo_path_gain_db(self) -> float | None:
        """The canceller's echo-path gain estimate (0 dB until bounded or learnt); None before
        any frame. Read-only, for traces."""
        return self._recent[-1].echo_path_gain_db if self._recent else None

    @property
    def reference_level_db(self) -> float | None:
        """Agent audio (the aligned reference) over the latest ~30 ms, dBFS; None before any frame.

        Read-only, for traces: the same frames ``echo_state`` looks at.
        """
        frames = list(self._recent)[-3:]
        if not frames:
            return None
        pow_mean = sum(10 ** (f.ref_level_db / 10) for f in frames) / len(frames)
        return 10 * math.log10(max(pow_mean, 1e-12))

    # -- inputs from the taps and the VAD ---------------------------------------------------------

    def echo_state(self, *, speech_prob: float = 1.0) -> EchoState:
        """Echo situation over the latest ~32 ms of processed microphone.

        The envelope correlation is only computed when ``speech_prob`` could pass a playback
        threshold: below it the window is not speech whatever the echo does.
        """
        frames: list[AecFrame] = list(self._recent)[-3:]
        tap_playing = self._tap.playing if self._tap is not None else False
        if not frames:
            return EchoState(agent_audible=tap_playing, residual_echo_db=None, double_talk=False)
        audible = tap_playing or any(
            f.far_end_active or f.ref_level_db > _REF_ACTIVE_DB for f in frames
        )
        residual = max(f.residual_echo_db for f in frames)
        raw_pow = sum(10 ** (f.mic_level_db / 10) for f in frames) / len(frames)
        delay_ms = frames[-1].delay_ms
        # Only at the estimated delay: maximised over every lag, two speech envelopes correlate
        # by chance (measured 0.85-0.94 for a caller with no echo at all).
        likeness = (
            self._echo_likeness.score(delay_frames=int(round(delay_ms / 10)))
            if audible
            and delay_ms is not None
            and speech_prob >= self.options.playback_threshold_min
            else 0.0
        )
        return EchoState(
            agent_audible=audible,
            residual_echo_db=residual,
            double_talk=any(f.double_talk for f in frames),
            raw_level_db=10 * math.log10(max(raw_pow, 1e-12)),
            echo_likeness=likeness,
            aec_unsettled=(
                self._aec_realigned_at is not None
                and self._aec_frames - self._aec_realigned_at < _UNSETTLED_FRAMES
            ),
            near_end_over_echo=any(
                f.mic_level_db > f.echo_level_db + _NEAR_END_MARGIN_DB for f in frames
            ),
            near_end_share=max(
                (f.near_end_share for f in frames if f.near_end_share is not None), default=None
            ),
        )

    def needs_speech_prob(self, window: np.ndarray) -> bool:
        """Whether Silero must run on this window (16 kHz); if not, pass ``speech_prob=0``.

        Windows under the call's noise floor (plus ``min_snr_db``) cannot be speech for the
        controller, whatever Silero says: skipping them changes no decision.
        """
        return self.controller.needs_speech_prob(_level_db(window))

    def observe_window(
        self, window: np.ndarray, *, speech_prob: float, t_ms: float, window_ms: float
    ) -> Decision:
        """One VAD analysis window of the cleaned microphone (16 kHz): decide, and act."""
        echo = self.echo_state(speech_prob=speech_prob)
        # The controller reads the acoustic features only while it weighs a soft yield.
        feats = (
            analyze_window(window, sample_rate_hz=16_000)
            if self.controller.state is ControllerState.SOFT_YIELD
            else None
        )
        level_db = feats.level_db if feats is not None else _level_db(window)
        return self.on_observation(
            Observation(
                t_ms=t_ms,
                window_ms=window_ms,
                speech_prob=speech_prob,
                level_db=level_db,
                agent_audible=echo.agent_audible,
                residual_echo_db=echo.residual_echo_db,
                double_talk=echo.double_talk,
                raw_level_db=echo.raw_level_db,
                echo_likeness=echo.echo_likeness,
                aec_unsettled=echo.aec_unsettled,
                near_end_over_echo=echo.near_end_over_echo,
                near_end_share=echo.near_end_share,
                features=feats,
                near_end_prob=self._near_end_prob(),
            )
        )

    def _near_end_prob(self) -> float | None:
        # once the estimate's echo bound is learnt (before, it erases callers too)
        if not self._recent or not self._recent[-1].near_end_trusted:
            return None
        return self._near_end_scorer.prob

    def on_observation(self, obs: Observation) -> Decision:
        self._last_t_ms = obs.t_ms
        d = self.controller.observe(obs)
        self._apply(d)
        if "window" in self._events:
            levels = self.controller.levels
            self.emit(
                "window",
                WindowRecord(
                    obs, d, levels.noise_floor_db, levels.speech_level_db, levels.background_db
                ),
            )
        return d

    # -- session events ---------------------------------------------------------------------------

    def _on_speech_created(self, ev: Any) -> None:
        if self._session is not None:
            self._wire(self._session)  # before the reply's LLM call and its first audio
        self._track_speech(ev.speech_handle)

    def _track_speech(self, handle: Any) -> None:
        if not getattr(handle, "allow_interruptions", True) or handle in self._active_speeches:
            return
        self._active_speeches.add(handle)
        self.controller.set_reply_active(True, t_ms=self._last_t_ms)

        def done(h: Any) -> None:
            self._active_speeches.discard(h)
            if not self._active_speeches:
                self.controller.set_reply_active(False, t_ms=self._last_t_ms)
                if self._tap is not None:
                    self._tap.release()

        handle.add_done_callback(done)

    def _on_segment_start(self) -> None:
        pass

    def _on_transcribed(self, ev: Any) -> None:
        text = getattr(ev, "transcript", "") or ""
        is_final = bool(getattr(ev, "is_final", False))
        if not is_final:
            self.controller.transcripts_expected = True  # interim words: the caller's come early
        agent_words = words_of(self._tap.recent_spoken_text()) if self._tap is not None else []
        d = self.controller.on_transcript(
            text, is_final=is_final, t_ms=self._last_t_ms, agent_words=agent_words
        )
        if d is not None:
            self._apply(d)
        elif (
            is_final
            and self._last_t_ms <= self._clear_turn_on_backchannel_until_ms
            and all(w in self.options.backchannel_words for w in words_of(text))
        ):
            self._clear_user_turn()

    # -- decisions --------------------------------------------------------------------------------

    def _apply(self, d: Decision) -> None:
        if d.action is Action.NONE:
            return
        self.decisions.append(d)
        logger.debug(
            "barge-in decision",
            extra={"action": d.action.value, "reason": d.reason, "t_ms": d.t_ms},
        )
        if d.action is Action.SOFT_YIELD:
            self.stats.soft_yields += 1
            # caller speech heard above threshold before the agent went quiet
            self.stats.last_time_to_yield_ms = d.speech_ms
            if self._tap is not None:
                self._tap.hold()
        elif d.action is Action.RESUME:
            self.stats.resumes += 1
            if self._tap is not None:
                self._tap.release()
            # a backchannel must not become the prefix of the caller's next turn
            self._clear_user_turn()
            self._clear_turn_on_backchannel_until_ms = d.t_ms + 1500.0
        elif d.action is Action.INTERRUPT:
            self.stats.interrupts += 1
            self._interrupt()
        self.emit("decision", d)

    def _interrupt(self) -> None:
        if self._session is None:
            return
        self.conversation.mark_interrupt()
        try:
            fut = self._session.interrupt(force=True)
        except Exception:
            logger.exception("session.interrupt failed")
            return
        task = asyncio.ensure_future(fut)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _clear_user_turn(self) -> None:
        if self._session is None:
            return
        try:
            self._session.clear_user_turn()
        except RuntimeError:
            pass  # session not running


def _profile(name: str) -> BargeInOptions:
    return profile(name)


def _transcribes(session: AgentSession) -> bool:
    """Whether the session's current agent hears the caller through an STT that streams interim
    words (the agent's own ``stt`` overrides the session's; a realtime model transcribes nothing
    here). A non-streaming STT (``openai.STT()``'s default model, behind LiveKit's
    ``StreamAdapter``) sends its words only after the caller stops: by then a soft yield that
    waited for them has resumed over the caller."""
    try:
        agent = session.current_agent
    except RuntimeError:
        agent = None  # not started yet
    stt: Any = getattr(agent, "stt", NOT_GIVEN)
    if not is_given(stt):
        stt = getattr(session, "stt", None)
    caps = getattr(stt, "capabilities", None)
    return stt is not None and bool(getattr(caps, "interim_results", False))


def _level_db(x: np.ndarray) -> float:
    """RMS level in dBFS, floored at -120 (as ``FrameFeatures.level_db``)."""
    p = float(np.dot(x, x)) / max(len(x), 1)
    return max(10.0 * math.log10(p), -120.0) if p > 0 else -120.0
