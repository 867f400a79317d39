"""``BargeInVAD``: the session's VAD. Silero on the echo-cancelled mic, echo-aware hysteresis.

It emits ordinary LiveKit ``VADEvent``s (START_OF_SPEECH / INFERENCE_DONE / END_OF_SPEECH), so turn
detection, endpointing and STT segmentation keep working, and feeds every analysis window to the
barge-in controller, whose decisions the engine carries out before the event is even sent.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from livekit import rtc
from livekit.agents import vad as lk_vad

# Imported here, not lazily: importing ``livekit.plugins.silero`` registers its plugin, which
# LiveKit allows on the main thread only; a first import from ``prewarm()`` or ``stream()`` in a
# worker thread (thread job executor, ``run_in_executor``) would raise RuntimeError.
from livekit.plugins.silero import onnx_model

from .decision import Decision
from .resample import PolyphaseResampler

if TYPE_CHECKING:
    from .engine import BargeIn

ANALYSIS_RATE_HZ = 16_000
WINDOW_SAMPLES = 512  # Silero's window at 16 kHz: 32 ms
_PREFIX_PADDING_S = 0.5
_MAX_UTTERANCE_S = 60.0


@functools.lru_cache(maxsize=1)
def _shared_onnx_session() -> object:
    """One ONNX session per process, shared by every stream (each keeps its own RNN state)."""
    return onnx_model.new_inference_session(force_cpu=True)


class AnalysisWindows:
    """Mono float samples at any supported rate in, Silero's 32 ms windows at 16 kHz out.

    Exact-count streaming resampler: soxr's would deliver 16 kHz in 30-40 ms bursts, holding
    back the windows that decide an onset. A rate change keeps what was already resampled.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._rate_hz: int | None = None
        self._resampler: PolyphaseResampler | None = None
        self._buf = np.zeros(0, np.float32)

    def push(self, samples: np.ndarray, *, rate_hz: int) -> list[np.ndarray]:
        if rate_hz != self._rate_hz:
            self._rate_hz = rate_hz
            self._resampler = (
                None
                if rate_hz == ANALYSIS_RATE_HZ
                else PolyphaseResampler(in_rate_hz=rate_hz, out_rate_hz=ANALYSIS_RATE_HZ)
            )
        x = samples if self._resampler is None else self._resampler.process(samples)
        if len(x):
            self._buf = np.concatenate([self._buf, np.asarray(x, np.float32)])
        windows = []
        while len(self._buf) >= WINDOW_SAMPLES:
            windows.append(self._buf[:WINDOW_SAMPLES])
            self._buf = self._buf[WINDOW_SAMPLES:]
        return windows


class NearEndScorer:
    """Silero on the near-end estimate (``AecFrame.near_end``), with its own recurrent state.

    Push the estimate's samples at the input rate; every complete 32 ms window at 16 kHz is
    scored while ``score`` is true (the agent's echo may be in the mic: elsewhere the decision
    does not read it). Windows ``needs_model`` rejects (under the call's level gates: the
    estimate holds no caller there) score 0 without the model, which keeps its state, as the
    main VAD does. Scoring from a fresh state on demand instead (the last 8 windows replayed)
    kept 4 of 9 vetoes in fast replay: the state carries the context.
    """

    def __init__(self, model: Callable[[np.ndarray], float] | None = None) -> None:
        self._model = model
        self._windows = AnalysisWindows()
        self.prob: float | None = None
        """Latest window's probability; None before the first scored window or after skipping."""

    def push(
        self,
        samples: np.ndarray,
        *,
        rate_hz: int,
        score: bool,
        needs_model: Callable[[np.ndarray], bool] | None = None,
    ) -> None:
        for window in self._windows.push(samples, rate_hz=rate_hz):
            if not score:
                self.prob = None
            elif needs_model is not None and not needs_model(window):
                self.prob = 0.0
            else:
                if self._model is None:
                    self._model = onnx_model.OnnxModel(
                        onnx_session=_shared_onnx_session(), sample_rate=ANALYSIS_RATE_HZ
                    )
                self.prob = float(self._model(window))


class BargeInVAD(lk_vad.VAD):
    """LiveKit VAD whose decisions come from the barge-in engine (one per session)."""

    def __init__(self, engine: BargeIn) -> None:
        super().__init__(capabilities=lk_vad.VADCapabilities(update_interval=0.032))
        self._engine = engine
        self._onnx_session: object | None = None

    @property
    def model(self) -> str:
        return "silero-bargein"

    @property
    def provider(self) -> str:
        return "livekit-bargein"

    @property
    def min_silence_duration(self) -> float:
        """Offset hysteresis in seconds (read by LiveKit's streaming turn detector)."""
        return self._engine.options.offset_ms / 1000.0

    def _model(self) -> Callable[[np.ndarray], float]:
        if self._onnx_session is None:
            self._onnx_session = _shared_onnx_session()
        return onnx_model.OnnxModel(onnx_session=self._onnx_session, sample_rate=ANALYSIS_RATE_HZ)

    def prewarm(self) -> None:
        """Load the ONNX model now (it ships inside livekit-plugins-silero)."""
        self._model()

    def stream(self) -> BargeInVADStream:
        return BargeInVADStream(self, self._model(), self._engine)


class BargeInVADStream(lk_vad.VADStream):
    def __init__(self, vad: BargeInVAD, model: Callable[[np.ndarray], float], engine: BargeIn):
        super().__init__(vad)
        self._model = model
        self._engine = engine

    async def _main_task(self) -> None:
        windows = AnalysisWindows()
        samples = 0  # analysed samples at 16 kHz: the stream's clock
        recent: deque[rtc.AudioFrame] = deque()  # prefix padding + utterance, at input rate
        recent_s = 0.0
        speaking = False

        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):
                windows.reset()
                # LiveKit's flush contract: speech state is dropped, continued speech starts anew
                self._engine.controller.reset_speech()
                speaking = False
                continue
            frame: rtc.AudioFrame = item
            data = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
            if frame.num_channels > 1:
                data = data.reshape(-1, frame.num_channels).mean(axis=1)
            ready = windows.push(data, rate_hz=frame.sample_rate)

            recent.append(frame)
            recent_s += frame.duration
            keep_s = _MAX_UTTERANCE_S if speaking else _PREFIX_PADDING_S
            while recent and recent_s - recent[0].duration >= keep_s:
                recent_s -= recent.popleft().duration

            for window in ready:
                samples += WINDOW_SAMPLES
                t0 = time.perf_counter()
                # Under the level gate Silero's probability changes nothing: skip the model.
                # Its recurrent state stays as the last (quiet) window left it; on Piper onsets
                # that ramps up like continuous processing, where a reset lags a window or two.
                if self._engine.needs_speech_prob(window):
                    prob = float(self._model(window))
                else:
                    prob = 0.0
                decision = self._engine.observe_window(
                    window,
                    speech_prob=prob,
                    t_ms=samples * 1000.0 / ANALYSIS_RATE_HZ,
                    window_ms=WINDOW_SAMPLES * 1000.0 / ANALYSIS_RATE_HZ,
                )
                infer_s = time.perf_counter() - t0
                self._emit(decision, samples, prob, infer_s, frame, list(recent))
                if decision.speech_started:
                    speaking = True
                elif decision.speech_ended:
                    speaking = False

    def _emit(
        self,
        d: Decision,
        samples: int,
        prob: float,
        infer_s: float,
        frame: rtc.AudioFrame,
        utterance: list[rtc.AudioFrame],
    ) -> None:
        now = time.time()
        speech_s = d.speech_ms / 1000.0
        silence_s = d.silence_ms / 1000.0
        if d.speech_started:
            self._event_ch.send_nowait(
                lk_vad.VADEvent(
                    type=lk_vad.VADEventType.START_OF_SPEECH,
                    samples_index=samples,
                    timestamp=now,
                    speech_duration=speech_s,
                    silence_duration=0.0,
                    frames=utterance,
                    speaking=True,
                )
            )
        self._event_ch.send_nowait(
            lk_vad.VADEvent(
                type=lk_vad.VADEventType.INFERENCE_DONE,
                samples_index=samples,
                timestamp=now,
                speech_duration=speech_s,
                silence_duration=silence_s,
                frames=[frame],
                probability=prob,
                inference_duration=infer_s,
                speaking=d.speaking,
                raw_accumulated_silence=silence_s,
                raw_accumulated_speech=speech_s,
            )
        )
        if d.speech_ended:
            self._event_ch.send_nowait(
                lk_vad.VADEvent(
                    type=lk_vad.VADEventType.END_OF_SPEECH,
                    samples_index=samples,
                    timestamp=now,
                    speech_duration=0.0,
                    silence_duration=silence_s,
                    frames=utterance,
                    speaking=False,
                )
            )
