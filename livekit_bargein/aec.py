"""Echo-cancelled microphone input: WebRTC AEC3 (``livekit.rtc.AudioProcessingModule``) plus
bulk-delay alignment and echo bookkeeping for barge-in decisions.

AEC3 finds the echo by itself only while it arrives less than ~500 ms after the reference it was
given; beyond ~600 ms it fails outright. :class:`EchoCanceller` therefore estimates the bulk delay
(:class:`~livekit_bargein.delay.EchoDelayEstimator`) and feeds AEC3 a reference pre-delayed by
``delay - margin``, so AEC3 always sees a small positive residual delay.

Everything here is synchronous and works on 10 ms float32 frames; the glue that taps LiveKit's
audio input/output uses :func:`to_mono_float` and :class:`FrameSplitter` to get there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from livekit import rtc

from .delay import EchoDelayEstimator
from .near_end import ESTIMATE_MIN_HISTORY_MS, GAIN_BOUND_MARGIN_DB, NearEndDetector
from .options import SUPPORTED_RATES_HZ

__all__ = ["SUPPORTED_RATES_HZ", "AecFrame", "EchoCanceller", "FrameSplitter", "to_mono_float"]

_FLOOR_DB = -120.0
_FLOOR_POWER = 10 ** (_FLOOR_DB / 10)
_INT16_SCALE = 32768.0


def _db(power: float) -> float:
    return 10.0 * math.log10(power + _FLOOR_POWER)


@dataclass(frozen=True)
class AecFrame:
    """One processed 10 ms frame and the echo state after it. Levels are RMS in dBFS
    (full scale = 1.0; -120 dB stands for digital silence).

    Attributes:
        clean: the APM output (echo cancelled, noise suppressed, high-passed as configured),
            float32, 10 ms. AEC3 delays it by ~8-15 ms relative to the input.
        mic_level_db: level of the raw microphone frame (the AEC input).
        ref_level_db: level of the reference frame aligned with this mic frame (the one played
            ``delay_ms`` ago); before a delay estimate exists, the unaligned current frame.
        clean_level_db: level of ``clean``.
        echo_level_db: expected echo level in the raw microphone: the reverberation-smeared
            aligned reference envelope plus ``echo_path_gain_db``.
        echo_path_gain_db: running estimate of microphone vs aligned reference level, learnt
            on frames where only the far end talks.
        residual_echo_db: expected echo level left in ``clean``: ``echo_level_db`` minus the
            lower quartile of the per-frame removal (a frame leaks more in a quarter of cases).
        erle_db: running echo return loss enhancement: median of the per-frame raw mic vs
            clean level difference over far-end single-talk frames.
        far_end_active: the aligned reference envelope is above the activity gate, i.e. echo
            may be present in this frame.
        double_talk: far end active and near-end sound over the echo: the microphone is well
            above what the echo path and the noise floor explain, or (once AEC3 has converged)
            AEC3 removed little from the frame.
        delay_ms: current bulk-delay estimate, or None (not yet confident / alignment off).
        near_end_share: share of the mic's power no delay of the reference explains (see
            :class:`~livekit_bargein.near_end.NearEndDetector`); None with echo cancellation
            off or before the first 40 ms.
        near_end: the microphone with what the played audio explains taken out (see
            ``NearEndDetector(separate=True)``), the samples completed during this frame (0 or
            20 ms worth, ~40 ms behind the mic); None unless ``separate_near_end``.
        near_end_trusted: the estimate's echo bound has been learnt (see
            ``NearEndDetector.bound_learned``); before, it erases callers too.
        reference_moved: the reference AEC3 is given changed with this frame (it was
            re-aligned to a new delay): AEC3 re-converges from here, and until it has its
            residual estimates understate the leak.
    """

    clean: np.ndarray
    mic_level_db: float
    ref_level_db: float
    clean_level_db: float
    echo_level_db: float
    echo_path_gain_db: float
    residual_echo_db: float
    erle_db: float
    far_end_active: bool
    double_talk: bool
    delay_ms: float | None
    near_end_share: float | None = None
    near_end: np.ndarray | None = None
    near_end_trusted: bool = False
    reference_moved: bool = False


class EchoCanceller:
    """Synchronous echo canceller for 10 ms mono frames, with bulk-delay alignment.

    Call :meth:`process` once per 10 ms with the microphone frame and the reference frame that
    the speaker played at the same time (``None`` while nothing plays: "AEC idle", the
    reference is taken as silence and nothing breaks). The reference is kept in a delay line;
    once the delay estimate is confident, AEC3 gets it pre-delayed by
    ``delay - alignment_margin_ms``.

    Echo bookkeeping uses the AEC *input* and the reference, not the noise-suppressed output:
    the echo path gain is learnt from mic vs aligned reference level, ERLE from raw mic vs
    clean power on far-end single-talk frames.

    Args:
        sample_rate_hz: one of 8000, 16000, 24000, 48000.
        echo_cancellation: run AEC3. Without it the reference is only used for bookkeeping.
        noise_suppression: run WebRTC noise suppression after AEC3.
        high_pass_filter: run WebRTC's high-pass filter.
        max_delay_ms: largest bulk delay that is estimated and compensated; 0 disables the
            alignment (AEC3 alone then copes with delays up to ~500 ms).
        alignment_margin_ms: residual delay left to AEC3 after alignment; it must stay
            positive because AEC3 cannot cancel an echo that arrives before its reference.
        align_above_ms: delays up to this are left to AEC3 alone, which handles them: every
            re-alignment makes AEC3 re-converge, leaking echo for a few hundred ms.
        double_talk_margin_db: how far the mic must exceed the explained level (echo + noise)
            to count as double talk.
        far_end_gate_dbfs: aligned reference envelope level above which the far end counts as
            active.
        wait_for_echo: give AEC3 the reference only once an echo path is found (a confirmed
            bulk delay). AEC3 that has not converged suppresses a caller talking over the far
            end by 60-90 dB when there is no echo at all, and for seconds when there is; until
            the echo is found the barge-in engine's own echo gates (residual margin, level
            learning) stand in. Needs ``max_delay_ms > 0``.
        separate_near_end: also hand out the near-end estimate (``AecFrame.near_end``).
        near_end_estimate_history_ms: see ``NearEndDetector(estimate_min_history_ms=...)``.
        mic_gain_db: gain applied to every microphone frame first (clipped at full scale), so
            that all of the above hears it; see ``BargeInOptions.mic_gain_db``.
    """

    def __init__(
        self,
        *,
        sample_rate_hz: int,
        echo_cancellation: bool = True,
        noise_suppression: bool = True,
        high_pass_filter: bool = True,
        max_delay_ms: float = 1000.0,
        alignment_margin_ms: float = 50.0,
        align_above_ms: float = 350.0,
        double_talk_margin_db: float = 6.0,
        far_end_gate_dbfs: float = -60.0,
        wait_for_echo: bool = True,
        near_end_gain_bound_db: float | None = GAIN_BOUND_MARGIN_DB,
        separate_near_end: bool = False,
        near_end_estimate_history_ms: float = ESTIMATE_MIN_HISTORY_MS,
        mic_gain_db: float = 0.0,
    ) -> None:
        if sample_rate_hz not in SUPPORTED_RATES_HZ:
            raise ValueError(
                f"unsupported sample_rate_hz {sample_rate_hz}; use one of {SUPPORTED_RATES_HZ}"
            )
        if max_delay_ms < 0:
            raise ValueError(f"max_delay_ms must be >= 0, got {max_delay_ms}")
        if alignment_margin_ms < 0:
            raise ValueError(f"alignment_margin_ms must be >= 0, got {alignment_margin_ms}")
        self.sample_rate_hz = int(sample_rate_hz)
        self.frame_samples = self.sample_rate_hz // 100
        self.echo_cancellation = echo_cancellation
        self.noise_suppression = noise_suppression
        self.high_pass_filter = high_pass_filter
        self.max_delay_ms = float(max_delay_ms)
        self.alignment_margin_ms = float(alignment_margin_ms)
        self.align_above_ms = float(align_above_ms)
        self.double_talk_margin_db = float(double_talk_margin_db)
        self.far_end_gate_dbfs = float(far_end_gate_dbfs)
        # the gain bound needs the far end 20 dB over the gate, as energy over its window
        self._bound_min_ref_sum = _BOUND_FRAMES * 10 ** ((self.far_end_gate_dbfs + 20.0) / 10)
        self.wait_for_echo = wait_for_echo
        self.near_end_gain_bound_db = near_end_gain_bound_db
        self.separate_near_end = separate_near_end
        self.near_end_estimate_history_ms = near_end_estimate_history_ms
        if not math.isfinite(mic_gain_db):
            raise ValueError(f"mic_gain_db must be finite, got {mic_gain_db}")
        self.mic_gain_db = float(mic_gain_db)
        self._mic_gain = np.float32(10 ** (self.mic_gain_db / 20))
        self.reset()

    # -- lifecycle -----------------------------------------------------------------------

    def reset(self) -> None:
        """Start over: new APM instance, empty delay line, no estimates."""
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=self.echo_cancellation,
            noise_suppression=self.noise_suppression,
            high_pass_filter=self.high_pass_filter,
            auto_gain_control=False,
        )
        n = self.frame_samples
        # Frames reused every call; the int16 views write straight into their buffers.
        self._mic_frame = rtc.AudioFrame.create(self.sample_rate_hz, 1, n)
        self._ref_frame = rtc.AudioFrame.create(self.sample_rate_hz, 1, n)
        self._mic_pcm = np.frombuffer(self._mic_frame.data, dtype=np.int16)
        self._ref_pcm = np.frombuffer(self._ref_frame.data, dtype=np.int16)
        self._scratch = np.zeros(n, np.float32)
        self._stream_delay_ms: int | None = None
        if self.echo_cancellation:
            self._set_stream_delay(0)

        self._near_end = (
            NearEndDetector(
                sample_rate_hz=self.sample_rate_hz,
                max_delay_ms=max(self.max_delay_ms, 10.0),
                gain_bound_margin_db=self.near_end_gain_bound_db,
                separate=self.separate_near_end,
                estimate_min_history_ms=self.near_end_estimate_history_ms,
            )
            if self.echo_cancellation
            else None
        )
        self._estimator: EchoDelayEstimator | None = None
        if self.max_delay_ms > 0:
            self._estimator = EchoDelayEstimator(
                sample_rate_hz=self.sample_rate_hz, max_delay_ms=self.max_delay_ms
            )
        max_frames = int(math.ceil(self.max_delay_ms / 10.0))
        # Reference delay line (samples), long enough for the largest pre-delay plus a frame.
        self._line = np.zeros((max_frames + 2) * n, np.float32)
        self._line_pos = 0  # where the next frame is written
        self._pre_delay = 0  # samples
        self._reference_moved = False  # since the last frame returned
        # Reference power per frame, newest at _pow_pos - 1; covers max delay + envelope spread.
        self._unaligned_window = max(max_frames, 50)  # AEC3's own reach when not aligned
        self._pow_len = self._unaligned_window + _BOUND_FRAMES + 8
        self._ref_pow = np.zeros(2 * self._pow_len, np.float64)
        self._pow_pos = 0
        # Reference energy over the _BOUND_FRAMES frames ending at each history slot, stored
        # like _ref_pow: the window ending `lag` frames ago is one index away per frame.
        self._ref_win = np.zeros(2 * self._pow_len, np.float64)
        self._mic_pow = np.zeros(_BOUND_FRAMES, np.float64)  # ring, for the gain bound
        self._mic_pos = 0

        self._echo_env = 0.0  # reverberation-smeared aligned reference power
        self._gain_db = 0.0  # start pessimistic: echo as loud as the reference
        self._gain_updates = 0
        self._noise_pow: float | None = None
        self._erle_db = 0.0  # nothing removed until measured
        self._erle_low_db = 0.0  # lower quartile of the removal: what the residual is judged by
        self._erle_updates = 0
        self.bad_frames = 0
        """Frames whose mic or reference contained NaN/inf (replaced by zeros)."""
        self.frames = 0

    # -- public state --------------------------------------------------------------------

    @property
    def delay_ms(self) -> float | None:
        """Bulk-delay estimate of the echo behind the reference (None if unknown/disabled)."""
        return None if self._estimator is None else self._estimator.delay_ms

    @property
    def pre_delay_ms(self) -> float:
        """Delay currently applied to the reference before AEC3."""
        return self._pre_delay * 1000.0 / self.sample_rate_hz

    # -- processing ----------------------------------------------------------------------

    def process(self, mic: np.ndarray, ref: np.ndarray | None) -> AecFrame:
        """Cancel the echo in one 10 ms microphone frame.

        Args:
            mic: mono float32 samples in [-1, 1], exactly 10 ms at ``sample_rate_hz``.
            ref: what the speaker played during the same 10 ms (same rate and length), or None
                when nothing is playing ("AEC idle": treated as silence).

        Raises:
            ValueError: a frame has the wrong shape or length.
        """
        mic, bad = self._checked(mic, "mic")
        if self.mic_gain_db:
            mic = np.clip(mic * self._mic_gain, -1.0, 1.0)
        if ref is None:
            ref = np.zeros(self.frame_samples, np.float32)
        else:
            ref, bad_ref = self._checked(ref, "ref")
            bad = bad or bad_ref
        if bad:
            self.bad_frames += 1
        self.frames += 1
        n = self.frame_samples

        if self._estimator is not None:
            self._estimator.push(ref, mic)
            self._update_alignment()
        near_end_share = self._near_end.push(mic, ref) if self._near_end is not None else None

        # Delay line: write the new reference frame, read the one _pre_delay samples older.
        pos = self._line_pos
        self._line[pos : pos + n] = ref
        self._line_pos = (pos + n) % len(self._line)
        start = pos - self._pre_delay
        if start >= 0:
            aligned = self._line[start : start + n]
        else:
            aligned = np.take(self._line, np.arange(start, start + n), mode="wrap")

        if self.echo_cancellation:
            # With no echo path AEC3 never converges and its suppressor then eats the start of
            # near-end speech whenever the far end plays: while no echo is detected it gets
            # silence as reference (transparent); it re-engages as soon as echo shows up.
            echo_found = (
                self.delay_ms is not None or not self.wait_for_echo or self._estimator is None
            )
            if self._gain_db >= _ECHO_GATE_DB and echo_found:
                self._to_pcm(aligned, self._ref_pcm)
            else:
                self._ref_pcm.fill(0)
            self._apm.process_reverse_stream(self._ref_frame)
        self._to_pcm(mic, self._mic_pcm)
        self._apm.process_stream(self._mic_frame)
        clean = self._mic_pcm.astype(np.float32) * np.float32(1.0 / _INT16_SCALE)

        mic_pow = float(np.dot(mic, mic)) / n
        clean_pow = float(np.dot(clean, clean)) / n
        ref_pow = float(np.dot(ref, ref)) / n
        return self._bookkeeping(clean, mic_pow, clean_pow, ref_pow, near_end_share)

    # -- internals -----------------------------------------------------------------------

    def _checked(self, x: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 1 or x.shape[0] != self.frame_samples:
            got = f"{x.shape[0]} samples" if x.ndim == 1 else f"an array of shape {x.shape}"
            raise ValueError(
                f"{name} must be mono 10 ms: expected {self.frame_samples} samples at "
                f"{self.sample_rate_hz} Hz, got {got}"
            )
        # One dot product is cheaper than isfinite().all() and catches NaN/inf alike.
        if math.isfinite(float(np.dot(x, x))):
            return x, False
        return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), True

    def _to_pcm(self, x: np.ndarray, out: np.ndarray) -> None:
        buf = self._scratch
        np.multiply(x, np.float32(_INT16_SCALE), out=buf)
        np.clip(buf, -32768.0, 32767.0, out=buf)
        np.copyto(out, buf, casting="unsafe")

    def _set_stream_delay(self, delay_ms: int) -> None:
        delay_ms = min(max(delay_ms, 0), 500)  # the APM rejects anything else
        if delay_ms != self._stream_delay_ms:
            self._apm.set_stream_delay_ms(delay_ms)
            self._stream_delay_ms = delay_ms

    def _update_alignment(self) -> None:
        est = self._estimator.delay_ms if self._estimator is not None else None
        if est is None or not self.echo_cancellation:
            return
        target_ms = max(0.0, est - self.alignment_margin_ms) if est > self.align_above_ms else 0.0
        # Every re-alignment makes AEC3 re-converge; only move when the residual delay has
        # drifted well away from the margin.
        if abs(target_ms - self.pre_delay_ms) > 30.0:
            max_pre = len(self._line) - self.frame_samples
            self._pre_delay = min(int(round(target_ms * self.sample_rate_hz / 1000)), max_pre)
            self._reference_moved = True

    def _bookkeeping(
        self,
        clean: np.ndarray,
        mic_pow: float,
        clean_pow: float,
        ref_pow: float,
        near_end_share: float | None = None,
    ) -> AecFrame:
        near_end = None
        if self._near_end is not None and self.separate_near_end:
            near_end = self._near_end.pop_near_end()
        # Reference power history (10 ms resolution) for level alignment. Each value is
        # stored twice, L apart, so every window ending at the newest frame is one slice.
        hist, size = self._ref_pow, self._pow_len
        pos = self._pow_pos
        hist[pos] = hist[pos + size] = ref_pow
        self._pow_pos = (pos + 1) % size
        newest = pos + size  # index of the newest value in the upper copy
        delay_ms = self.delay_ms
        if delay_ms is not None:
            k = min(int(round(delay_ms / 10.0)), size - _BOUND_FRAMES - 3)
            aligned_pow = float(hist[newest - k])
            # ±20 ms around the estimate: the estimate's jitter and the direct-path spread.
            direct = float(hist[newest - k - 2 : newest - k + 3].max())
            lags = (max(k - 2, 0), k + 2)
        else:
            # Unknown delay: the echo may come from anywhere AEC3 (or the estimator) can reach.
            aligned_pow = ref_pow
            direct = float(hist[newest - self._unaligned_window + 1 : newest + 1].max())
            lags = (0, self._unaligned_window - 1)
        # The room's reverberation keeps the echo going after the reference stops: decay the
        # envelope by 1 dB per 10 ms (a T60 of 0.6 s) instead of dropping it.
        self._echo_env = max(direct, self._echo_env * _ENV_DECAY)
        env_db = _db(self._echo_env)

        mic_db = _db(mic_pow)
        clean_db = _db(clean_pow)
        # Noise floor: follows drops at once, rises by 3 dB/s (speech pauses pull it back).
        if self._noise_pow is None:
            self._noise_pow = mic_pow
        else:
            self._noise_pow = min(mic_pow, self._noise_pow * _NOISE_RISE)
        noise_db = _db(self._noise_pow)

        far_active = env_db > self.far_end_gate_dbfs
        echo_pow = self._echo_env * 10 ** (self._gain_db / 10)
        explained_db = _db(echo_pow + self._noise_pow)
        removal_db = mic_db - clean_db
        # Frames where echo could dominate the mic; elsewhere the far end tells us nothing.
        relevant = far_active and mic_db > noise_db + 10.0
        # Two cues for near-end speech over the echo: (1) the mic is well above what the echo
        # path and noise explain; (2) once AEC3 has converged it removes >30 dB from echo-only
        # frames, so a frame it barely touched holds something the reference does not explain.
        dt_level = relevant and mic_db > explained_db + self.double_talk_margin_db
        dt_clean = relevant and self._erle_db >= _CONVERGED_ERLE_DB and removal_db < _DT_REMOVAL_DB
        double_talk = dt_level or dt_clean

        self._bound_gain(hist, newest, lags, mic_pow)
        if relevant and (delay_ms is not None or self._estimator is None):
            # Echo path gain: a high quantile (80 %) of mic - envelope over echo-only frames,
            # so double talk needs the mic above nearly all echo-only frames. A frame AEC3
            # removes >25 dB from is echo whatever the level cue says (so a louder echo path
            # cannot lock itself out as "double talk").
            if not double_talk or removal_db >= 25.0:
                self._gain_updates += 1
                step = 1.0 if self._gain_updates < 50 else 0.25  # fast start, then steady
                obs = mic_db - env_db
                self._gain_db += step * (0.4 if obs > self._gain_db else -0.1)
            # ERLE: running median of per-frame removal on single-talk frames. Frames only
            # the removal cue calls double talk still count a little: if AEC3 diverged (echo
            # path change) they are echo, and the ERLE must fall so the cue switches off.
            if not dt_level:
                self._erle_updates += 1
                step = 1.0 if self._erle_updates < 50 else 0.3
                if dt_clean:
                    step *= 0.25
                self._erle_db += step if removal_db > self._erle_db else -step
                # AEC3's removal is bimodal: total on most echo-only frames, 10-20 dB at phrase
                # ends and in reverberant tails. Judged by the median, those frames leak ~30 dB
                # over the residual estimate; the lower quartile bounds them.
                up = removal_db > self._erle_low_db
                self._erle_low_db += step * (1.0 / 3.0) if up else -step
        erle_db = self._erle_db
        echo_db = _db(echo_pow)
        moved, self._reference_moved = self._reference_moved, False
        return AecFrame(
            clean=clean,
            mic_level_db=mic_db,
            ref_level_db=_db(aligned_pow),
            clean_level_db=clean_db,
            echo_level_db=echo_db,
            echo_path_gain_db=self._gain_db,
            residual_echo_db=echo_db - min(erle_db, self._erle_low_db),
            erle_db=erle_db,
            far_end_active=far_active,
            double_talk=double_talk,
            delay_ms=delay_ms,
            near_end_share=near_end_share,
            near_end=near_end,
            near_end_trusted=near_end is not None and self._near_end.bound_learned,
            reference_moved=moved,
        )

    def _bound_gain(
        self, hist: np.ndarray, newest: int, lags: tuple[int, int], mic_pow: float
    ) -> None:
        """Pull the echo-path gain down to what the microphone's energy allows.

        Over the last ``_BOUND_FRAMES`` frames the mic holds at least the echo of the reference
        played one echo delay earlier, so ``gain <= E_mic / E_ref(lag)`` at the true lag. With
        the lag not known exactly, the weakest reference window over the possible lags gives a
        bound that holds for all of them. Energy sums over 300 ms, unlike per-frame levels,
        stay loud through the gaps between words, so a far end that plays into a silent mic
        drives the gain down within a second. Near-end speech only loosens the bound.
        """
        self._mic_pow[self._mic_pos] = mic_pow
        self._mic_pos = (self._mic_pos + 1) % _BOUND_FRAMES
        size = self._pow_len
        pos = newest - size
        win = self._ref_win
        win[pos] = win[pos + size] = float(hist[newest - _BOUND_FRAMES + 1 : newest + 1].sum())
        lo, hi = lags
        ref_sum = float(win[newest - hi : newest - lo + 1].min())
        if ref_sum < self._bound_min_ref_sum:
            return  # the far end was not loud at every lag: an echo may still be on its way
        bound = _db(float(self._mic_pow.sum()) / ref_sum) + _BOUND_MARGIN_DB
        if bound < self._gain_db:
            self._gain_db = max(bound, self._gain_db - 1.0)


_ENV_DECAY = 10 ** (-1.0 / 10)  # 1 dB per 10 ms frame
_NOISE_RISE = 10 ** (0.03 / 10)  # 3 dB per second
# The removal cue for double talk needs a converged AEC3 (its echo-only frames lose >30 dB).
_CONVERGED_ERLE_DB = 25.0
_ECHO_GATE_DB = -45.0
"""Echo path gain below which no echo is assumed (AEC3 gets a silent reference)."""
_DT_REMOVAL_DB = 15.0
_BOUND_FRAMES = 30
"""Frames (10 ms) of energy the gain bound compares: long enough to span gaps between words."""
_BOUND_MARGIN_DB = 3.0
"""Room reverberation carries some echo energy past the window; the bound allows for it."""


def to_mono_float(frame_data: np.ndarray, *, num_channels: int) -> np.ndarray:
    """Interleaved int16 PCM (e.g. ``np.frombuffer(frame.data, np.int16)``) → mono float32.

    Channels are averaged; float input is taken as already scaled to [-1, 1].

    Raises:
        ValueError: ``num_channels`` < 1 or the sample count is not a multiple of it.
    """
    if num_channels < 1:
        raise ValueError(f"num_channels must be >= 1, got {num_channels}")
    x = np.asarray(frame_data).reshape(-1)
    if x.size % num_channels:
        raise ValueError(f"{x.size} samples do not split into {num_channels} channels")
    scale = np.float32(1.0 / _INT16_SCALE) if x.dtype == np.int16 else np.float32(1.0)
    if num_channels == 1:
        return x.astype(np.float32) * scale
    return x.reshape(-1, num_channels).astype(np.float32).mean(axis=1) * scale


class FrameSplitter:
    """Cuts a stream of arbitrarily sized chunks into exact 10 ms frames.

    The remainder of each chunk is carried over to the next :meth:`push`.

    Args:
        sample_rate_hz: rate of the stream (a multiple of 100 Hz).
        frame_ms: output frame length; 10 ms is what the APM needs.
    """

    def __init__(self, *, sample_rate_hz: int, frame_ms: int = 10) -> None:
        samples = sample_rate_hz * frame_ms / 1000
        if sample_rate_hz <= 0 or samples != int(samples) or samples < 1:
            raise ValueError(
                f"{frame_ms} ms at {sample_rate_hz} Hz is not a whole number of samples"
            )
        self.sample_rate_hz = sample_rate_hz
        self.frame_samples = int(samples)
        self._buf = np.zeros(0, np.float32)

    @property
    def pending_samples(self) -> int:
        """Samples held back until the next frame is complete."""
        return len(self._buf)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        """Add mono float32 samples; return every complete frame (possibly none)."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        # Always a fresh array: the frames handed out must not alias the caller's buffer.
        x = np.concatenate([self._buf, x])
        n = len(x) // self.frame_samples
        cut = n * self.frame_samples
        frames = [x[i : i + self.frame_samples] for i in range(0, cut, self.frame_samples)]
        self._buf = x[cut:].copy()
        return frames

    def reset(self) -> None:
        """Drop the carried remainder."""
        self._buf = np.zeros(0, np.float32)
