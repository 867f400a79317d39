from __future__ import annotations

import asyncio
import math

import pytest
from livekit import rtc
from livekit.agents import stt as lk_stt

from livekit_bargein.eval.stt import OracleSTT, OracleSTTStream, Utterance

T = lk_stt.SpeechEventType
SR = 16_000
TICK = SR // 100  # 10 ms
TEXT = "could you repeat the last part about the train times please"
UTT = Utterance(voiced_start_sample=8_000, end_sample=40_000, text=TEXT)  # 0.5 s .. 2.5 s


def _silence(n_ticks: int, rate_hz: int = SR) -> list[rtc.AudioFrame]:
    n = rate_hz // 100
    return [
        rtc.AudioFrame(data=b"\0\0" * n, sample_rate=rate_hz, num_channels=1, samples_per_channel=n)
        for _ in range(n_ticks)
    ]


def _first_tick_end_at_or_after(sample: int) -> int:
    """Position (end of the 10 ms frame) at which an instant ``sample`` is passed."""
    return math.ceil(sample / TICK) * TICK


async def _feed(stream: OracleSTTStream, frames: list[rtc.AudioFrame]) -> list[lk_stt.SpeechEvent]:
    for f in frames:
        stream.push_frame(f)
    stream.end_input()
    return [ev async for ev in stream]


async def test_events_timed_by_received_audio() -> None:
    oracle = OracleSTT()
    oracle.set_script([UTT])
    events = await _feed(oracle.stream(), _silence(400))  # 4 s

    types = [ev.type for ev in events]
    assert types[0] == T.START_OF_SPEECH
    assert types[-3:] == [T.FINAL_TRANSCRIPT, T.END_OF_SPEECH, T.RECOGNITION_USAGE]
    interims = [ev for ev in events if ev.type == T.INTERIM_TRANSCRIPT]
    assert len(interims) >= 5
    texts = [ev.alternatives[0].text for ev in interims]
    assert all(TEXT.startswith(t) for t in texts)
    n_words = [len(t.split()) for t in texts]
    assert n_words == sorted(n_words) and n_words[0] < n_words[-1]
    final = next(ev for ev in events if ev.type == T.FINAL_TRANSCRIPT)
    assert final.alternatives[0].text == TEXT
    assert final.alternatives[0].end_time == pytest.approx(2.5)

    at = {typ: pos for pos, typ, _ in reversed(oracle.event_log)}  # first occurrence
    assert at[T.START_OF_SPEECH] == _first_tick_end_at_or_after(8_000)
    assert at[T.INTERIM_TRANSCRIPT] == _first_tick_end_at_or_after(8_000 + 350 * 16)
    assert at[T.FINAL_TRANSCRIPT] == _first_tick_end_at_or_after(40_000 + 250 * 16)
    assert at[T.END_OF_SPEECH] == at[T.FINAL_TRANSCRIPT]
    interim_pos = [pos for pos, typ, _ in oracle.event_log if typ == T.INTERIM_TRANSCRIPT]
    assert max(interim_pos) < at[T.FINAL_TRANSCRIPT]
    assert all(b - a == 250 * 16 for a, b in zip(interim_pos, interim_pos[1:], strict=False))


async def test_final_only_sends_no_interim_words() -> None:
    # a non-streaming STT's timing: the words come once, after the speech ends
    oracle = OracleSTT(interim_results=False, final_delay_ms=600)
    assert not oracle.capabilities.interim_results
    oracle.set_script([UTT])
    events = await _feed(oracle.stream(), _silence(400))
    assert T.INTERIM_TRANSCRIPT not in [ev.type for ev in events]
    final = next(ev for ev in events if ev.type == T.FINAL_TRANSCRIPT)
    assert final.alternatives[0].text == TEXT
    at = {typ: pos for pos, typ, _ in reversed(oracle.event_log)}
    assert at[T.FINAL_TRANSCRIPT] == _first_tick_end_at_or_after(40_000 + 600 * 16)


async def test_final_lands_on_the_exact_frame() -> None:
    # Final instant on a frame boundary: emitted with the frame that reaches it, not before.
    oracle = OracleSTT(final_delay_ms=250)
    oracle.set_script([Utterance(voiced_start_sample=1_600, end_sample=16_000, text="hi there")])
    stream = oracle.stream()
    final_at = 16_000 + 4_000
    for f in _silence(final_at // TICK - 1):
        stream.push_frame(f)
    await asyncio.sleep(0.05)
    assert T.FINAL_TRANSCRIPT not in [typ for _, typ, _ in oracle.event_log]
    events = await _feed(stream, _silence(1))
    assert T.FINAL_TRANSCRIPT in [ev.type for ev in events]
    assert oracle.event_log[-3][:2] == (final_at, T.FINAL_TRANSCRIPT)


async def test_nothing_without_audio() -> None:
    oracle = OracleSTT()
    oracle.set_script([Utterance(voiced_start_sample=0, end_sample=3_200, text="hello")])
    stream = oracle.stream()
    await asyncio.sleep(0.3)  # wall time passes, no audio: nothing may be emitted
    assert oracle.event_log == []
    await stream.aclose()

    oracle.set_script([UTT])
    stream = oracle.stream()
    for f in _silence(UTT.voiced_start_sample // TICK - 1):
        stream.push_frame(f)
    await asyncio.sleep(0.05)
    assert oracle.event_log == []
    await stream.aclose()


async def test_other_frame_rates_count_the_same() -> None:
    oracle = OracleSTT()
    oracle.set_script([UTT])
    await _feed(oracle.stream(), _silence(400, rate_hz=48_000))
    at = {typ: pos for pos, typ, _ in reversed(oracle.event_log)}
    assert at[T.FINAL_TRANSCRIPT] == _first_tick_end_at_or_after(40_000 + 250 * 16)
    assert oracle.clock_samples == 400 * TICK


async def test_recreated_stream_continues_the_clock() -> None:
    oracle = OracleSTT()
    oracle.set_script([UTT])
    first = await _feed(oracle.stream(), _silence(150))  # 1.5 s: mid-utterance
    second = await _feed(oracle.stream(), _silence(250))
    assert [ev.type for ev in first].count(T.START_OF_SPEECH) == 1
    assert T.START_OF_SPEECH not in [ev.type for ev in second]
    assert [ev.type for ev in second].count(T.FINAL_TRANSCRIPT) == 1
    at = {typ: pos for pos, typ, _ in oracle.event_log}
    assert at[T.FINAL_TRANSCRIPT] == _first_tick_end_at_or_after(40_000 + 250 * 16)


async def test_flush_finalizes_ended_speech_early() -> None:
    oracle = OracleSTT()
    oracle.set_script([UTT])
    stream = oracle.stream()
    for f in _silence(UTT.end_sample // TICK + 5):  # speech over, final not yet due
        stream.push_frame(f)
    stream.flush()
    events = await _feed(stream, _silence(50))
    assert [ev.type for ev in events].count(T.FINAL_TRANSCRIPT) == 1
    at = {typ: pos for pos, typ, _ in oracle.event_log}
    assert at[T.FINAL_TRANSCRIPT] == UTT.end_sample + 5 * TICK


async def test_recognize_returns_overlapping_text() -> None:
    oracle = OracleSTT()
    oracle.set_script([UTT])
    await _feed(oracle.stream(), _silence(300))  # clock at 3 s
    buf = rtc.combine_audio_frames(_silence(100))  # taken as 2..3 s: overlaps 0.5..2.5 s
    ev = await oracle.recognize(buf)
    assert ev.type == T.FINAL_TRANSCRIPT and ev.alternatives[0].text == TEXT
    await _feed(oracle.stream(), _silence(100))  # clock at 4 s: 3..4 s is silence
    ev = await oracle.recognize(buf)
    assert ev.alternatives[0].text == ""


def test_overlapping_script_rejected() -> None:
    oracle = OracleSTT()
    with pytest.raises(ValueError):
        oracle.set_script([UTT, Utterance(voiced_start_sample=30_000, end_sample=50_000, text="x")])
