"""``livekit-bargein bench``: CPU cost of one barge-in stream beside Silero alone.

Three measurements on the same audio (an echoing far end plus near-end barge-ins):

* ``silero_raw``: the Silero ONNX model call alone, one call per 512-sample window at 16 kHz.
* ``silero_plugin``: LiveKit's own ``silero.VAD.load().stream()`` fed 10 ms frames, i.e. what a
  stock LiveKit agent runs. Inference goes through an executor thread and asyncio, so this is the
  process CPU time of the whole run, all threads included.
* ``pipeline``: one barge-in stream, synchronously and exactly as the engine runs it (what
  ``EchoCancelledInput.__anext__`` and ``BargeInVADStream._main_task`` do, minus the asyncio
  plumbing): per 10 ms ``EchoCanceller.process`` (AEC3 with a real reference + delay estimator +
  noise suppression + high-pass), then per 32 ms window Silero + ``analyze_window`` +
  ``BargeInController.observe`` with a reply active. A second, instrumented pass breaks it down.

Everything is CPU time (``time.process_time`` / ``time.thread_time``), not wall time, so a busy
machine disturbs it far less than a wall-clock timing (cache and frequency effects remain).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc

from .aec import EchoCanceller
from .decision import Action
from .engine import BargeIn, _level_db
from .options import PROFILES, processing_rate_hz
from .resample import PolyphaseResampler
from .vad import ANALYSIS_RATE_HZ, WINDOW_SAMPLES, _shared_onnx_session

__all__ = ["TARGET_PCT_PER_STREAM", "run_bench", "print_bench", "bench_cli"]

TARGET_PCT_PER_STREAM = 1.2
"""Issue target: the whole pipeline costs at most this share of one core per stream."""

_FRAME_MS = 10
_WARMUP_S = 1.0  # first ONNX/APM calls are slow (allocation, page faults): not steady state
_ECHO_DELAY_MS = 80.0
_FAR_DBFS = -22.0
_NEAR_DBFS = -24.0
_ECHO_GAIN_DB = -6.0
_NOISE_DBFS = -65.0
_NEAR_FIRST_S = 2.5  # first barge-in, then one every _NEAR_PERIOD_S (~40 % double talk)
_NEAR_PERIOD_S = 6.0
_LISTEN_FIRST_S = 0.5  # the caller's turn: talking from here, pausing this long between phrases
_LISTEN_PAUSE_S = 0.8

_FAR_TEXT = (
    "Thanks for calling. Your order shipped yesterday and it should arrive on Thursday, between "
    "nine in the morning and noon. If nobody is home, the courier will leave it with a neighbour "
    "or at the nearest pickup point, and you will get a text message with the details. Is there "
    "anything else I can help you with today, for example changing the delivery address?"
)
_NEAR_TEXT = "Wait, sorry, hold on. I need to change the address before it ships."


# --------------------------------------------------------------------------------------------
# audio


@dataclass(frozen=True)
class _Scene:
    rate_hz: int
    mic: np.ndarray  # echo + near-end speech + noise, float32 at rate_hz
    ref: np.ndarray  # far-end speech (what the speaker played), float32 at rate_hz
    mic_16k: np.ndarray  # mic at Silero's rate
    source: str  # "piper" or "synthetic"


def _rms_to(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = math.sqrt(float(np.mean(x.astype(np.float64) ** 2))) or 1.0
    return (x * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def _tile(x: np.ndarray, n: int) -> np.ndarray:
    return np.resize(x, n).astype(np.float32)  # np.resize repeats the array


def _fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    # numpy only (scipy is not a core dependency); np.convolve would take seconds at this size.
    n = len(x) + len(h) - 1
    nfft = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(h, nfft), nfft)[: len(x)]
    return y.astype(np.float32)


def _synthetic_speech(seconds: float, rate_hz: int, f0_hz: float, seed: int) -> np.ndarray:
    """Deterministic speech-like signal: voiced syllables (gliding pitch, two formants) at ~4 Hz,
    some fricative noise bursts, pauses. Close enough to speech for Silero and the features to do
    their full work; used when Piper (the eval extra) is not installed."""
    rng = np.random.default_rng(seed)
    n_total = int(seconds * rate_hz)
    out = np.zeros(n_total, np.float32)
    pos = int(0.2 * rate_hz)
    while pos < n_total:
        n = int(rng.uniform(0.12, 0.30) * rate_hz)
        t = np.arange(n) / rate_hz
        env = np.sin(np.pi * np.arange(n) / n) ** 0.7
        if rng.random() < 0.15:  # fricative: high-passed noise
            noise = rng.standard_normal(n)
            seg = 0.3 * (noise - np.convolve(noise, np.ones(4) / 4, mode="same"))
        else:
            f0 = f0_hz * rng.uniform(0.85, 1.15) * (1 + rng.uniform(-0.2, 0.2) * t / t[-1])
            phase = 2 * np.pi * np.cumsum(f0) / rate_hz
            f1, f2 = rng.uniform(300, 800), rng.uniform(900, 2200)
            seg = np.zeros(n)
            for k in range(1, int(3500 / f0_hz)):
                fk = k * f0_hz
                amp = (1 / k) * (
                    1
                    + 3 * math.exp(-(((fk - f1) / 150) ** 2))
                    + 2 * math.exp(-(((fk - f2) / 200) ** 2))
                )
                seg += amp * np.sin(k * phase)
            seg += 0.05 * rng.standard_normal(n)  # aspiration
        end = min(n_total, pos + n)
        out[pos:end] = (env * seg)[: end - pos]
        gap = rng.uniform(0.6, 1.0) if rng.random() < 0.12 else rng.uniform(0.03, 0.12)
        pos = end + int(gap * rate_hz)
    return out


@functools.lru_cache(maxsize=4)
def _voices(rate_hz: int, source: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(far-end speech, near-end utterance, source actually used)."""
    if source in ("auto", "piper"):
        try:
            from .eval.piper_voice import PiperSpeaker

            speaker = PiperSpeaker.load()
            far = speaker.synthesize(_FAR_TEXT, out_rate_hz=rate_hz).audio
            # Another pitch and tempo stand in for the caller's voice.
            near = speaker.synthesize(
                _NEAR_TEXT, out_rate_hz=rate_hz, pitch_semitones=4.0, length_scale=0.9
            ).audio
            return far, near, "piper"
        except (ImportError, RuntimeError):
            if source == "piper":
                raise
    far = _synthetic_speech(16.0, rate_hz, f0_hz=110.0, seed=1)
    near = _synthetic_speech(2.5, rate_hz, f0_hz=200.0, seed=2)
    return far, near, "synthetic"


def _make_scene(
    seconds: float, rate_hz: int, source: str, *, agent_speaking: bool = True
) -> _Scene:
    """The agent speaking throughout with barge-ins (``agent_speaking``), or the caller's turn:
    nothing played, the caller talking from ``_LISTEN_FIRST_S`` on with short pauses."""
    n = int(round(seconds * rate_hz / (rate_hz // 100))) * (rate_hz // 100)  # whole 10 ms frames
    far_voice, near_voice, used = _voices(rate_hz, source)
    ref = _rms_to(_tile(far_voice, n), _FAR_DBFS)
    first_s, period_s = _NEAR_FIRST_S, _NEAR_PERIOD_S
    if not agent_speaking:
        ref = np.zeros(n, np.float32)
        first_s, period_s = _LISTEN_FIRST_S, len(near_voice) / rate_hz + _LISTEN_PAUSE_S

    # Echo path: bulk delay + a short exponentially decaying room response.
    rng = np.random.default_rng(7)
    d = int(_ECHO_DELAY_MS * rate_hz / 1000)
    tail = int(0.2 * rate_hz)
    rir = np.zeros(d + tail, np.float64)
    rir[d] = 1.0
    decay = np.exp(-np.arange(1, tail) / (0.04 * rate_hz))  # 40 ms time constant
    rir[d + 1 :] = 0.3 * rng.standard_normal(tail - 1) * decay
    echo = _fft_convolve(ref, rir)
    echo = _rms_to(echo, _FAR_DBFS + _ECHO_GAIN_DB)

    near = np.zeros(n, np.float32)
    near_utt = _rms_to(near_voice, _NEAR_DBFS)
    start_s = first_s
    while (s := int(start_s * rate_hz)) < n:
        e = min(n, s + len(near_utt))
        near[s:e] = near_utt[: e - s]
        start_s += period_s
    noise = rng.standard_normal(n).astype(np.float32) * np.float32(10 ** (_NOISE_DBFS / 20))
    mic = np.clip(echo + near + noise, -1.0, 1.0).astype(np.float32)

    if rate_hz == ANALYSIS_RATE_HZ:
        mic_16k = mic
    else:
        from .resample import PolyphaseResampler

        rs = PolyphaseResampler(in_rate_hz=rate_hz, out_rate_hz=ANALYSIS_RATE_HZ)
        mic_16k = np.asarray(rs.process(mic), np.float32)
    return _Scene(rate_hz=rate_hz, mic=mic, ref=ref, mic_16k=mic_16k, source=used)


# --------------------------------------------------------------------------------------------
# measurements


@dataclass(frozen=True)
class _Cpu:
    process_s: float
    thread_s: float


def _silero_model() -> Callable[[np.ndarray], float]:
    from livekit.plugins.silero import onnx_model

    # The session the engine shares between streams; each model keeps its own RNN state.
    return onnx_model.OnnxModel(onnx_session=_shared_onnx_session(), sample_rate=ANALYSIS_RATE_HZ)


def _measure_silero_raw(scene: _Scene) -> _Cpu:
    x = scene.mic_16k
    last = len(x) - WINDOW_SAMPLES + 1
    windows = [x[i : i + WINDOW_SAMPLES] for i in range(0, last, WINDOW_SAMPLES)]
    model = _silero_model()
    p0, t0 = time.process_time(), time.thread_time()
    for w in windows:
        model(w)
    return _Cpu(time.process_time() - p0, time.thread_time() - t0)


@functools.lru_cache(maxsize=1)
def _plugin_vad() -> Any:
    from livekit.plugins import silero

    return silero.VAD.load()  # model load is a one-off per process: not timed


def _measure_silero_plugin(scene: _Scene) -> _Cpu:
    vad = _plugin_vad()
    n = scene.rate_hz // 100
    pcm = np.clip(scene.mic * 32768.0, -32768, 32767).astype(np.int16)
    frames = [
        rtc.AudioFrame(pcm[i : i + n].tobytes(), scene.rate_hz, 1, n)
        for i in range(0, len(pcm) - n + 1, n)
    ]

    async def run() -> _Cpu:
        # All frames are pushed at once: the stream runs flat out, so idle waits between frames
        # (and the event loop's per-frame wake-ups of a live call) are not in the figure.
        p0, t0 = time.process_time(), time.thread_time()
        stream = vad.stream()
        for f in frames:
            stream.push_frame(f)
        stream.end_input()
        async for _ev in stream:
            pass
        await stream.aclose()
        return _Cpu(time.process_time() - p0, time.thread_time() - t0)

    return asyncio.run(run())


_PARTS = (
    "resample", "apm_aec", "webrtc_apm", "delay_estimator", "near_end", "near_end_silero",
    "glue", "silero", "engine_window",
)
_SUBPARTS = {  # included in their parent
    "webrtc_apm": "apm_aec", "delay_estimator": "apm_aec", "near_end": "apm_aec",
    "near_end_silero": "apm_aec",
}


def _measure_pipeline(
    scene: _Scene, *, instrument: bool, aec_rate_hz: int | None = 16_000, reply_active: bool = True
) -> tuple[_Cpu, dict[str, float], float]:
    """One stream over the scene: (CPU, seconds per part, share of windows Silero ran on).
    ``instrument`` adds per-part thread-CPU timers (~1 µs per timer read), so the headline
    figure comes from an uninstrumented pass. ``aec_rate_hz`` as ``BargeInOptions``;
    ``reply_active``: the agent is replying (False for the caller's turn)."""
    in_rate = scene.rate_hz
    n_in = in_rate // 100
    # The real engine does the per-window work (echo state, features when needed, controller).
    options = PROFILES["speakerphone"].updated(aec_rate_hz=aec_rate_hz)
    engine = BargeIn(profile="speakerphone", options=options)
    # As EchoCancelledInput: a faster microphone (and the reference) resampled down first.
    rate = processing_rate_hz(in_rate, aec_rate_hz)
    down_mic = down_ref = None
    if rate != in_rate:
        down_mic = PolyphaseResampler(in_rate_hz=in_rate, out_rate_hz=rate)
        down_ref = PolyphaseResampler(in_rate_hz=in_rate, out_rate_hz=rate)
    # Same construction as EchoCancelledInput._setup: AEC3 + NS + HPF, 1 s delay search, the
    # near-end estimate when the options read it.
    aec = EchoCanceller(
        sample_rate_hz=rate,
        noise_suppression=True,
        max_delay_ms=1000.0,
        separate_near_end=engine.options.separates_near_end,
    )
    model = _silero_model()
    controller = engine.controller
    controller.set_reply_active(reply_active, t_ms=0.0)
    resampler: Any = None
    if rate != ANALYSIS_RATE_HZ:
        resampler = PolyphaseResampler(in_rate_hz=rate, out_rate_hz=ANALYSIS_RATE_HZ)
    clock = time.thread_time_ns
    parts_ns = dict.fromkeys(_PARTS, 0)
    if instrument:
        # Sub-parts of EchoCanceller.process, timed by wrapping the instance's collaborators:
        # the native WebRTC APM calls (FFI included) and the GCC-PHAT delay estimator.
        def timed(fn: Callable[..., Any], part: str) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                c = clock()
                out = fn(*args, **kwargs)
                parts_ns[part] += clock() - c
                return out

            return wrapper

        apm: Any = aec._apm
        apm.process_stream = timed(apm.process_stream, "webrtc_apm")
        apm.process_reverse_stream = timed(apm.process_reverse_stream, "webrtc_apm")
        if aec._estimator is not None:
            est: Any = aec._estimator
            est.push = timed(est.push, "delay_estimator")
        if aec._near_end is not None:
            ne: Any = aec._near_end
            ne.push = timed(ne.push, "near_end")
        scorer: Any = engine._near_end_scorer
        scorer.push = timed(scorer.push, "near_end_silero")

    buf = np.zeros(0, np.float32)
    samples = 0
    inferences = 0
    window_ms = WINDOW_SAMPLES * 1000.0 / ANALYSIS_RATE_HZ
    mic_all, ref_all = scene.mic, scene.ref
    p0, t0 = time.process_time(), time.thread_time()
    for i in range(0, len(mic_all) - n_in + 1, n_in):
        c0 = clock() if instrument else 0
        mic, ref = mic_all[i : i + n_in], ref_all[i : i + n_in]
        if down_mic is not None and down_ref is not None:
            mic, ref = down_mic.process(mic), down_ref.process(ref)
            if instrument:
                c = clock()
                parts_ns["resample"] += c - c0
                c0 = c
        af = aec.process(mic, ref)
        engine.feed_aec_frame(af, _level_db(ref))
        if instrument:
            c1 = clock()
            parts_ns["apm_aec"] += c1 - c0
        # EchoCancelledInput hands an int16 rtc.AudioFrame to the VAD, which converts it back.
        pcm = np.clip(af.clean * 32768.0, -32768, 32767).astype(np.int16)
        frame = rtc.AudioFrame(pcm.tobytes(), rate, 1, len(pcm))
        data = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
        x = data if resampler is None else resampler.process(data)
        buf = np.concatenate([buf, np.asarray(x, np.float32)])
        if instrument:
            parts_ns["glue"] += clock() - c1
        while len(buf) >= WINDOW_SAMPLES:
            c0 = clock() if instrument else 0
            window, buf = buf[:WINDOW_SAMPLES], buf[WINDOW_SAMPLES:]
            samples += WINDOW_SAMPLES
            # as BargeInVADStream: Silero only where its probability can matter
            if engine.needs_speech_prob(window):
                prob = float(model(window))
                inferences += 1
            else:
                prob = 0.0
            if instrument:
                c1 = clock()
                parts_ns["silero"] += c1 - c0
            d = engine.observe_window(
                window,
                speech_prob=prob,
                t_ms=samples * 1000.0 / ANALYSIS_RATE_HZ,
                window_ms=window_ms,
            )
            if d.action is Action.INTERRUPT and reply_active:
                # The engine stops that reply; the next reply starts: keep a reply active.
                controller.set_reply_active(False, t_ms=d.t_ms)
                controller.set_reply_active(True, t_ms=d.t_ms)
            if instrument:
                parts_ns["engine_window"] += clock() - c1
    cpu = _Cpu(time.process_time() - p0, time.thread_time() - t0)
    windows = max(samples // WINDOW_SAMPLES, 1)
    return cpu, {k: v / 1e9 for k, v in parts_ns.items()}, inferences / windows


# --------------------------------------------------------------------------------------------
# report


def _figures(cpu_s: float, audio_s: float) -> dict[str, float]:
    return {
        "cpu_s": cpu_s,
        "us_per_10ms": cpu_s / (audio_s * 100.0) * 1e6,
        "pct_core": 100.0 * cpu_s / audio_s,
    }


def _median_cpu(runs: Sequence[_Cpu]) -> _Cpu:
    return _Cpu(
        statistics.median(r.process_s for r in runs), statistics.median(r.thread_s for r in runs)
    )


def run_bench(
    *,
    seconds: float = 30.0,
    sample_rate_hz: int = 16000,
    repeats: int = 1,
    audio: str = "auto",
    aec_rate_hz: int | None = 16_000,
) -> dict[str, Any]:
    """Measure CPU per second of audio for Silero alone, LiveKit's Silero plugin and the pipeline.

    Args:
        seconds: audio per measurement.
        sample_rate_hz: microphone/reference rate (8/16/24/48 kHz); Silero always runs at 16 kHz.
        aec_rate_hz: the pipeline's processing rate, as ``BargeInOptions.aec_rate_hz`` (None:
            the microphone's rate).
        repeats: passes per measurement; the median is reported.
        audio: ``"auto"`` (Piper if the eval extra is installed, else synthetic), ``"piper"`` or
            ``"synthetic"``.

    Returns:
        A JSON-serialisable dict: ``silero_raw``, ``silero_plugin``, ``pipeline`` (each with
        ``cpu_s``, ``us_per_10ms``, ``pct_core`` from process CPU time and ``thread_*`` from the
        calling thread's CPU time), ``pipeline_breakdown`` (per part, from an instrumented pass)
        and run metadata.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    scene = _make_scene(seconds, sample_rate_hz, audio)
    audio_s = len(scene.mic) / sample_rate_hz
    warm = _make_scene(_WARMUP_S, sample_rate_hz, audio)
    _measure_silero_raw(warm)
    _measure_silero_plugin(warm)
    _measure_pipeline(warm, instrument=False, aec_rate_hz=aec_rate_hz)

    raw = _median_cpu([_measure_silero_raw(scene) for _ in range(repeats)])
    plugin = _median_cpu([_measure_silero_plugin(scene) for _ in range(repeats)])
    pipe = _median_cpu(
        [_measure_pipeline(scene, instrument=False, aec_rate_hz=aec_rate_hz)[0]
         for _ in range(repeats)]
    )
    # The caller's turn: nothing plays, so the echo search, the near-end estimate's Silero and
    # the delay estimator have nothing to do; what is left is the cost between replies.
    listening = _make_scene(seconds, sample_rate_hz, audio, agent_speaking=False)
    listen = _median_cpu(
        [_measure_pipeline(listening, instrument=False, aec_rate_hz=aec_rate_hz,
                           reply_active=False)[0]
         for _ in range(repeats)]
    )
    instrumented = [
        _measure_pipeline(scene, instrument=True, aec_rate_hz=aec_rate_hz) for _ in range(repeats)
    ]
    parts = {k: statistics.median(b[1][k] for b in instrumented) for k in _PARTS}

    def entry(cpu: _Cpu, note: str) -> dict[str, Any]:
        out: dict[str, Any] = _figures(cpu.process_s, audio_s)
        out.update({f"thread_{k}": v for k, v in _figures(cpu.thread_s, audio_s).items()})
        out["note"] = note
        return out

    result: dict[str, Any] = {
        "silero_raw": entry(raw, "OnnxModel call per 512-sample window, calling thread only"),
        "silero_plugin": entry(
            plugin,
            "livekit.plugins.silero VAD stream; inference on an executor thread: process CPU "
            "counts every thread, thread_* only the event loop's",
        ),
        "pipeline": entry(
            pipe,
            "EchoCanceller.process per 10 ms + Silero + analyze_window + controller per 32 ms",
        ),
    }
    result["pipeline_listening"] = entry(
        listen,
        "the same pipeline during the caller's turn: nothing played, the caller talking, no "
        "reply active",
    )
    # Linear scaling: N streams cost N times one stream (no shared-cache or GIL effects counted).
    for key in ("pipeline", "pipeline_listening"):
        result[key]["streams_per_core"] = math.floor(100.0 / result[key]["pct_core"])
    pct = result["pipeline"]["pct_core"]
    result["pipeline"]["meets_target"] = pct <= TARGET_PCT_PER_STREAM
    result["pipeline"]["silero_window_share"] = instrumented[0][2]
    breakdown: dict[str, dict[str, Any]] = {k: _figures(v, audio_s) for k, v in parts.items()}
    for sub, parent in _SUBPARTS.items():
        breakdown[sub]["note"] = f"included in {parent}"
    breakdown["apm_aec"]["note"] = (
        "EchoCanceller.process: WebRTC APM + delay estimator + near-end cue and estimate + "
        "echo bookkeeping; BargeIn.feed_aec_frame (Silero on the near-end estimate)"
    )
    breakdown["near_end_silero"]["note"] = (
        "Silero on the near-end estimate while the agent's echo may be in the mic "
        "(included in apm_aec)"
    )
    breakdown["resample"]["note"] = "microphone and reference down to the processing rate"
    breakdown["glue"]["note"] = "int16 rtc.AudioFrame hand-off and window buffering"
    breakdown["silero"]["note"] = (
        f"run on {100 * instrumented[0][2]:.0f} % of windows; skipped under the level gate"
    )
    breakdown["engine_window"]["note"] = (
        "BargeIn.observe_window: echo state, features while a soft yield is weighed, controller"
    )
    result["pipeline_breakdown"] = breakdown
    result["meta"] = {
        "audio_s": audio_s,
        "sample_rate_hz": sample_rate_hz,
        "aec_rate_hz": processing_rate_hz(sample_rate_hz, aec_rate_hz),
        "audio": scene.source,
        "repeats": repeats,
        "target_pct_per_stream": TARGET_PCT_PER_STREAM,
        "streams_per_core_assumes": "linear scaling: floor(100 / pipeline pct_core)",
        "scene": (
            f"far end {_FAR_DBFS:.0f} dBFS echoing at {_ECHO_DELAY_MS:.0f} ms "
            f"({_ECHO_GAIN_DB:+.0f} dB, 200 ms room tail), near-end barge-ins "
            f"{_NEAR_DBFS:.0f} dBFS every {_NEAR_PERIOD_S:.0f} s, noise {_NOISE_DBFS:.0f} dBFS"
        ),
        "listening_scene": (
            f"nothing played; the caller at {_NEAR_DBFS:.0f} dBFS from {_LISTEN_FIRST_S} s, "
            f"{_LISTEN_PAUSE_S} s pauses between phrases, noise {_NOISE_DBFS:.0f} dBFS"
        ),
    }
    return result


def print_bench(result: dict[str, Any]) -> None:
    """Print the result as a small table (rich if installed, plain text otherwise)."""
    rows: list[tuple[str, str, str, str, str]] = []
    for key in ("silero_raw", "silero_plugin", "pipeline", "pipeline_listening"):
        r = result[key]
        spc = str(r["streams_per_core"]) if "streams_per_core" in r else ""
        us, pct, thr = r["us_per_10ms"], r["pct_core"], r["thread_pct_core"]
        rows.append((key, f"{us:.1f}", f"{pct:.2f}", f"{thr:.2f}", spc))
    for key, r in result["pipeline_breakdown"].items():
        label = ("    " if key in _SUBPARTS else "  ") + key  # sub-parts are inside their parent
        rows.append((label, f"{r['us_per_10ms']:.1f}", f"{r['pct_core']:.2f}", "", ""))
    meta = result["meta"]
    pipe = result["pipeline"]
    title = (
        f"CPU per stream: {meta['audio_s']:.0f} s of {meta['audio']} audio at "
        f"{meta['sample_rate_hz']} Hz, processed at {meta['aec_rate_hz']} Hz"
    )
    verdict = (
        f"pipeline {pipe['pct_core']:.2f} % of one core per stream while the agent speaks "
        f"({'meets' if pipe['meets_target'] else 'misses'} the "
        f"{meta['target_pct_per_stream']} % target), "
        f"{result['pipeline_listening']['pct_core']:.2f} % during the caller's turn "
        "(pipeline_listening); streams/core assumes linear scaling; "
        "indented parts are included in the part above them; Silero ran on "
        f"{100 * pipe['silero_window_share']:.0f} % of windows (skipped under the level gate)"
    )
    header = ("component", "µs / 10 ms", "% core", "% core (thr)", "streams/core")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        print("  ".join(f"{h:>16}" for h in header))
        for row in rows:
            print("  ".join(f"{c:>16}" for c in row))
        print(verdict)
        return
    table = Table(title=title)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print(verdict)


def bench_cli(
    *,
    seconds: float,
    json_out: Path | None,
    sample_rate_hz: int = 16000,
    aec_rate_hz: int | None = 16_000,
) -> int:
    """``livekit-bargein bench``: run, print the table, optionally write the JSON."""
    result = run_bench(seconds=seconds, sample_rate_hz=sample_rate_hz, aec_rate_hz=aec_rate_hz)
    print_bench(result)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_out}")
    return 0
