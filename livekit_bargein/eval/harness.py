"""Runs one labeled scenario through a real ``AgentSession`` in real time, on a 10 ms sample clock.

Each tick: the simulated speaker plays 10 ms of whatever the session sent it; the acoustic path
turns that (echo) plus the user event and the noise bed into 10 ms of microphone, which goes to the
session as one frame. Every latency is derived from sample indices, never from wall time; the wall
clock only paces the ticks (LiveKit's own timers run on it), and the worst lateness is recorded.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.agents import vad as lk_vad
from livekit.agents.voice import io
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from ..log import logger
from ..resample import PolyphaseResampler
from .acoustics import AcousticPath
from .configs import HarnessContext, get_config
from .llm import ScriptedLLM
from .manifest import Scenario
from .piper_voice import PiperSpeaker
from .speaker import SimSpeaker
from .stt import FINAL_ONLY_DELAY_MS, OracleSTT, Utterance
from .trace import (
    SIM_RATE_HZ,
    TICK_MS,
    TICK_SAMPLES,
    ContextRecord,
    ScenarioTrace,
)
from .tts import PiperTTS

FOLLOW_UP_REPLY = "Okay, let me help you with that."
"""What the scripted LLM answers on the turn after the scenario's reply."""

_MAX_WAIT_FIRST_AUDIO_S = 20.0
_TAIL_AFTER_USER_S = 2.5
_TAIL_AFTER_REPLY_S = 0.5
_WORDS_PER_S_FLOOR = 2.0  # cap on scenario length: the reply can't be slower than this


@dataclass
class HarnessResources:
    """Loaded once per process and shared by concurrent scenarios."""

    silero: lk_vad.VAD
    piper: PiperSpeaker
    fixed_voice: bool = False
    """The agent's voice without Piper's sampling noise (see ``PiperTTS(deterministic=...)``)."""
    mic_rate_hz: int = SIM_RATE_HZ
    """Rate of the microphone frames the session gets (a LiveKit room's RoomIO: 24 kHz). The
    acoustics are simulated at 16 kHz and resampled up; the scoring clock stays at 16 kHz."""
    stt_interims: bool = True
    """The oracle STT streams interim words (Deepgram, OpenAI's realtime transcription); False:
    only a final transcript after the speech ends, like a non-streaming STT (see ``OracleSTT``)."""

    @classmethod
    def load(
        cls,
        *,
        fixed_voice: bool = False,
        mic_rate_hz: int = SIM_RATE_HZ,
        stt_interims: bool = True,
    ) -> HarnessResources:
        from livekit.plugins import silero

        return cls(
            silero=silero.VAD.load(),
            piper=PiperSpeaker.load(),
            fixed_voice=fixed_voice,
            mic_rate_hz=mic_rate_hz,
            stt_interims=stt_interims,
        )


class SimMic(io.AudioInput):
    """The microphone: frames pushed by the harness clock, read by the session (at
    ``out_rate_hz``: pushed samples at another rate are resampled, every 10 ms to 10 ms)."""

    def __init__(self, *, out_rate_hz: int | None = None) -> None:
        super().__init__(label="SimMic")
        self._q: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()
        self._out_rate_hz = out_rate_hz
        self._resampler: PolyphaseResampler | None = None

    def push(self, samples: np.ndarray, sample_rate_hz: int) -> None:
        rate = self._out_rate_hz or sample_rate_hz
        if rate != sample_rate_hz:
            rs = self._resampler
            if rs is None or rs.in_rate_hz != sample_rate_hz:
                rs = self._resampler = PolyphaseResampler(
                    in_rate_hz=sample_rate_hz, out_rate_hz=rate
                )
            samples = rs.process(samples)
        pcm = np.clip(samples * 32768.0, -32768, 32767).astype(np.int16)
        self._q.put_nowait(rtc.AudioFrame(pcm.tobytes(), rate, 1, len(pcm)))

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._q.get()


class _NullTextOutput(io.TextOutput):
    def __init__(self) -> None:
        super().__init__(label="NullText", next_in_chain=None)

    async def capture_text(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class RecordingVAD(lk_vad.VAD):
    """Pass-through VAD that records each inference's probability for timelines."""

    def __init__(self, inner: lk_vad.VAD, sink: list[tuple[int, float]]) -> None:
        super().__init__(capabilities=inner.capabilities)
        self._inner = inner
        self._sink = sink

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def provider(self) -> str:
        return self._inner.provider

    def __getattr__(self, name: str) -> Any:  # e.g. min_silence_duration
        return getattr(self._inner, name)

    def stream(self) -> lk_vad.VADStream:
        return _RecordingStream(self, self._inner.stream(), self._sink)


class _RecordingStream(lk_vad.VADStream):
    def __init__(self, vad: RecordingVAD, inner: lk_vad.VADStream, sink: list) -> None:
        super().__init__(vad)
        self._inner = inner
        self._sink = sink
        self._pushed_samples = 0

    async def _main_task(self) -> None:
        async def forward() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    self._inner.flush()
                else:
                    self._inner.push_frame(item)
            self._inner.end_input()

        fwd = asyncio.create_task(forward())
        try:
            async for ev in self._inner:
                if ev.type == lk_vad.VADEventType.INFERENCE_DONE:
                    # samples_index counts the VAD's own input at its rate; the sim clock is 16 kHz
                    # and the session feeds the VAD from sample 0 of the microphone.
                    self._sink.append((int(ev.samples_index), float(ev.probability)))
                self._event_ch.send_nowait(ev)
        finally:
            await fwd
            await self._inner.aclose()


class _EvalAgent(Agent):
    async def on_enter(self) -> None:
        self.session.generate_reply()


def _db(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0
    return round(20 * math.log10(max(rms, 1e-6)), 1)


_WORD = re.compile(r"\S+")


async def run_scenario(
    scenario: Scenario,
    config_name: str,
    resources: HarnessResources,
    *,
    decision_trace_dir: Path | None = None,
    llm: ScriptedLLM | None = None,
) -> ScenarioTrace:
    """Run one scenario under one configuration and return what happened, tick by tick.

    ``llm`` replaces the default script (the scenario's ``agent_text``, then a stock reply), e.g.
    to answer the caller's interruption; its first reply must be the scenario's ``agent_text``.
    """
    trace = ScenarioTrace(scenario_id=scenario.id, label=scenario.label, config=config_name)
    try:
        await _run(scenario, config_name, resources, trace, decision_trace_dir, llm)
    except Exception as e:  # a failed scenario is reported, not fatal to the run
        logger.exception("scenario failed", extra={"scenario": scenario.id, "config": config_name})
        trace.error = f"{type(e).__name__}: {e}"
    return trace


async def _run(
    scenario: Scenario,
    config_name: str,
    res: HarnessResources,
    trace: ScenarioTrace,
    decision_trace_dir: Path | None = None,
    scripted_llm: ScriptedLLM | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    path = AcousticPath(scenario, sample_rate_hz=SIM_RATE_HZ)
    speaker = SimSpeaker(sample_rate_hz=SIM_RATE_HZ)
    mic = SimMic(out_rate_hz=res.mic_rate_hz)
    stt = (
        OracleSTT()
        if res.stt_interims
        else OracleSTT(interim_results=False, final_delay_ms=FINAL_ONLY_DELAY_MS)
    )
    llm = scripted_llm if scripted_llm is not None else ScriptedLLM(replies=[scenario.agent_text])
    # streaming with word timestamps, like Cartesia or ElevenLabs
    tts = PiperTTS(speaker=res.piper, streaming=True, deterministic=res.fixed_voice)
    config = get_config(config_name)
    setup = config.make(
        HarnessContext(
            sample_rate_hz=SIM_RATE_HZ,
            speaker=speaker,
            silero=res.silero,
            scenario_id=scenario.id,
            config_name=config_name,
            decision_trace_dir=decision_trace_dir,
        )
    )
    kwargs = setup.session_kwargs()
    kwargs["vad"] = RecordingVAD(kwargs["vad"], trace.vad_probability)
    session = setup.build_session(
        stt=stt,
        llm=llm,
        tts=tts,
        aec_warmup_duration=None,
        user_away_timeout=None,
        **kwargs,
    )
    sync = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=_NullTextOutput())
    session.output.audio = setup.wrap_output(sync.audio_output)
    session.output.transcription = sync.text_output
    session.input.audio = setup.wrap_input(mic)

    tick = 0

    def on_event(kind: str) -> Any:
        def handler(ev: Any) -> None:
            data: dict[str, Any] = {"tick": tick, "kind": kind}
            for attr in ("old_state", "new_state", "resumed", "source"):
                if hasattr(ev, attr):
                    data[attr] = str(getattr(ev, attr))
            trace.events.append(data)

        return handler

    for kind in ("agent_state_changed", "user_state_changed", "agent_false_interruption"):
        session.on(kind, on_event(kind))

    assistant_added_at: list[float] = []

    def on_item_added(ev: Any) -> None:
        if getattr(ev.item, "role", None) == "assistant":
            assistant_added_at.append(loop.time())

    session.on("conversation_item_added", on_item_added)

    setup.before_session_start(session)
    agent = setup.agent() or _EvalAgent(instructions="You are a helpful voice assistant.")
    await session.start(agent)
    setup.on_session_started(session)

    max_ticks_before_audio = int(_MAX_WAIT_FIRST_AUDIO_S * 1000 / TICK_MS)
    n_words = len(_WORD.findall(scenario.agent_text))
    user_len_s = len(path.user) / SIM_RATE_HZ
    cap_after_audio_ticks = int(
        (n_words / _WORDS_PER_S_FLOOR + (scenario.user_onset_s or 0) + user_len_s + 10) * 100
    )
    first_audible: int | None = None
    deadline = loop.time()
    end_tick: int | None = None
    try:
        while True:
            played = speaker.pull(TICK_SAMPLES)
            if first_audible is None and speaker.first_played and speaker.first_played[-1] > 0:
                first_audible = tick * TICK_SAMPLES + (TICK_SAMPLES - speaker.first_played[-1])
                trace.first_audible_sample = first_audible
                path.place_user(first_audible)
                trace.user_onset_sample = path.user_start
                trace.user_voiced_sample = path.user_voiced_sample
                trace.user_end_sample = path.user_end_sample
                if scenario.user_text and path.user_voiced_sample is not None:
                    stt.set_script(
                        [
                            Utterance(
                                voiced_start_sample=path.user_voiced_sample,
                                end_sample=path.user_end_sample or path.user_voiced_sample,
                                text=scenario.user_text,
                            )
                        ]
                    )
            mic_chunk = path.mic(tick * TICK_SAMPLES, played)
            trace.agent_level_db.append(_db(played))
            trace.mic_level_db.append(_db(mic_chunk))
            mic.push(mic_chunk, SIM_RATE_HZ)
            tick += 1

            if first_audible is None:
                if tick > max_ticks_before_audio:
                    raise RuntimeError("the agent never started speaking")
            elif end_tick is None:
                end_tick = _end_tick(speaker, trace, tick, first_audible, cap_after_audio_ticks)
            if end_tick is not None and tick >= end_tick:
                break

            deadline += TICK_MS / 1000
            now = loop.time()
            lag_ms = (now - deadline) * 1000
            if lag_ms > trace.max_tick_lag_ms:
                trace.max_tick_lag_ms = round(lag_ms, 1)
                trace.max_tick_lag_tick = tick
            if lag_ms < 0:
                await asyncio.sleep(deadline - now)
            elif lag_ms > 200:
                deadline = now  # far behind (a stall): don't burst-feed the session to catch up
            else:
                await asyncio.sleep(0)
    finally:
        trace.speaker_states = speaker.states
        trace.played_samples = speaker.first_played
        first = speaker.first_segment
        trace.reply_completed = bool(first and first.finished and not first.interrupted)
        # The first reply's syntheses are those logged before the LLM's second call began.
        end_index = None
        if len(llm.records) > 1:
            t_next = llm.records[1].started_at
            end_index = sum(1 for r in tts.synth_log if r.logged_at < t_next)
        words = tts.reply_word_timings(0, end_index)
        trace.words = words
        if first is not None and first.finished and not first.interrupted:
            trace.reply_audio_samples = first.played_samples
        trace.events.extend(
            {**e, "sample": int(e["tick"]) * TICK_SAMPLES} for e in speaker.events  # type: ignore[arg-type]
        )
        trace.events.extend(setup.trace_events())
        for e in trace.events:
            if "sample" not in e:
                e["sample"] = int(e["tick"]) * TICK_SAMPLES
        trace.events.sort(key=lambda e: e["sample"])
        cleared_at = speaker.first_segment_cleared_at_loop_time
        if cleared_at is not None:
            trace.llm_tokens_after_cancel = llm.tokens_emitted_after(cleared_at)
            first_call = llm.records[0] if llm.records else None
            if first_call is not None and first_call.cancelled and first_call.closed_at:
                trace.llm_cancel_after_stop_ms = (first_call.closed_at - cleared_at) * 1000.0
            if assistant_added_at:
                trace.context_after_stop_ms = (assistant_added_at[0] - cleared_at) * 1000.0
        trace.context = _context_record(session, scenario, first, words, llm)
        try:
            await asyncio.wait_for(session.aclose(), timeout=5)
            await asyncio.wait_for(sync.aclose(), timeout=2)
        except Exception:
            logger.warning("session close timed out", extra={"scenario": scenario.id})
        await setup.aclose()


def _end_tick(
    speaker: SimSpeaker, trace: ScenarioTrace, tick: int, first_audible: int, cap_ticks: int
) -> int | None:
    """The tick to stop at, once it can be known; None while the scenario must go on."""
    first_audible_tick = first_audible // TICK_SAMPLES
    if tick >= first_audible_tick + cap_ticks:
        return tick
    fin = speaker.first_segment_finished_at_tick
    if fin is None:
        return None
    end = fin + int(_TAIL_AFTER_REPLY_S * 1000 / TICK_MS)
    if trace.user_end_sample is not None:
        end = max(end, trace.user_end_sample // TICK_SAMPLES + int(_TAIL_AFTER_USER_S * 100))
    return end


def _context_record(
    session: AgentSession, scenario: Scenario, first: Any, words: list, llm: ScriptedLLM
) -> ContextRecord:
    from ..context import EXTRA_KEY

    # The full reply is what the agent got from the LLM: a stream cancelled early generated
    # less, and a token sent after LiveKit stopped reading (it cancels its inference task, then
    # closes the stream) never reached the agent, so no plugin can keep it in the tail.
    generated = llm.records[0].delivered_text if llm.records else ""
    rec = ContextRecord(full_reply_text=generated or scenario.agent_text)
    if first is not None:
        pos = first.played_samples
        rec.heard_text = " ".join(w.word for w in words if w.start_sample < pos)
    for item in session.history.items:
        if getattr(item, "type", None) == "message" and item.role == "assistant":
            rec.message_text = item.text_content or ""
            rec.message_interrupted = bool(item.interrupted)
            extra = (item.extra or {}).get(EXTRA_KEY) or {}
            tail = extra.get("unspoken_tail")
            rec.unspoken_tail = tail if isinstance(tail, str) else None
            break
    # what the LLM's next call saw right after the first reply: a note about the interruption?
    if len(llm.records) > 1:
        items = [i for i in llm.records[1].chat_ctx.items if getattr(i, "type", None) == "message"]
        for prev, item in zip(items, items[1:], strict=False):
            if prev.role == "assistant" and item.role in ("system", "developer"):
                rec.next_call_note = item.text_content
                break
    return rec
