"""BargeInController on synthetic window sequences with known answers (no audio, no asyncio)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from livekit_bargein.decision import (
    Action,
    BargeInController,
    ControllerState,
    Observation,
    own_words_share,
    words_of,
)
from livekit_bargein.features import FrameFeatures
from livekit_bargein.options import BargeInOptions

WIN_MS = 32.0

VOICED = FrameFeatures(
    level_db=-30.0, harmonicity=0.85, pitch_hz=140.0, spectral_flatness=0.04,
    spectral_centroid_hz=900.0, low_band_ratio=0.1, high_band_ratio=0.05, duration_ms=WIN_MS,
)
NOISY = FrameFeatures(
    level_db=-30.0, harmonicity=0.15, pitch_hz=None, spectral_flatness=0.45,
    spectral_centroid_hz=2500.0, low_band_ratio=0.05, high_band_ratio=0.5, duration_ms=WIN_MS,
)


class Run:
    """Feeds windows to a controller and keeps the decisions."""

    def __init__(self, options: BargeInOptions | None = None, *, reply: bool = True) -> None:
        self.c = BargeInController(options or BargeInOptions())
        self.t = 0.0
        self.decisions = []
        if reply:
            self.c.set_reply_active(True, t_ms=0.0)

    def feed(self, n: int, prob: float, *, level_db: float = -30.0, audible: bool = True,
             residual_db: float | None = -80.0, features: FrameFeatures | None = VOICED,
             near_end_prob: float | None = None,
             near_end_share: float | None = None,
             raw_level_db: float | None = None) -> None:
        for _ in range(n):
            self.t += WIN_MS
            f = replace(features, level_db=level_db) if features is not None else None
            self.decisions.append(self.c.observe(Observation(
                t_ms=self.t, window_ms=WIN_MS, speech_prob=prob, level_db=level_db,
                agent_audible=audible, residual_echo_db=residual_db, features=f,
                near_end_prob=near_end_prob, near_end_share=near_end_share,
                raw_level_db=raw_level_db)))

    def actions(self) -> list[tuple[float, Action]]:
        return [(d.t_ms, d.action) for d in self.decisions if d.action is not Action.NONE]

    def first(self, pred) -> float | None:  # type: ignore[no-untyped-def]
        return next((d.t_ms for d in self.decisions if pred(d)), None)


def quiet_start(r: Run, n: int = 40) -> None:
    # a quiet room calibrates the noise floor around -70 dBFS
    r.feed(n, 0.02, level_db=-70.0, features=None)


def test_onset_after_onset_ms_and_offset_after_offset_ms() -> None:
    r = Run(BargeInOptions(onset_ms=64.0), reply=False)
    quiet_start(r)
    t_speech = r.t
    r.feed(20, 0.95, audible=False)
    r.feed(15, 0.05, level_db=-70.0, audible=False)
    start = r.first(lambda d: d.speech_started)
    end = r.first(lambda d: d.speech_ended)
    assert start == t_speech + 2 * WIN_MS  # onset_ms 64 = two windows
    assert end == t_speech + 20 * WIN_MS + 10 * WIN_MS  # offset_ms 320 = ten windows
    assert r.actions() == []  # no reply active: nothing to yield


def test_soft_yield_on_onset_while_agent_speaks() -> None:
    r = Run(BargeInOptions(onset_ms=64.0))
    quiet_start(r)
    t_speech = r.t
    r.feed(5, 0.95)
    assert r.actions() == [(t_speech + 2 * WIN_MS, Action.SOFT_YIELD)]
    assert r.c.state is ControllerState.SOFT_YIELD


def test_threshold_rises_with_residual_echo() -> None:
    # a cleaned signal no louder than the echo leaking through cannot start an onset at all
    r = Run()
    quiet_start(r)
    r.feed(10, 0.99, level_db=-40.0, residual_db=-40.0)
    assert r.actions() == []
    assert r.decisions[-1].threshold > 1.0
    # halfway between the block margin (3 dB) and the full margin (12 dB): halfway threshold
    o = BargeInOptions(playback_threshold_min=0.6, playback_threshold_max=0.9)
    r1 = Run(o)
    quiet_start(r1)
    r1.feed(10, 0.7, level_db=-32.5, residual_db=-40.0)
    assert r1.decisions[-1].threshold == pytest.approx(0.75)
    assert r1.actions() == []
    # the same probability well above the residual echo is the caller
    r2 = Run(o)
    quiet_start(r2)
    r2.feed(10, 0.8, level_db=-30.0, residual_db=-60.0)
    assert [a for _, a in r2.actions()] == [Action.SOFT_YIELD]
    assert r2.decisions[-1].threshold == pytest.approx(0.6)


def test_threshold_relaxes_after_echo_tail() -> None:
    r = Run()
    quiet_start(r)
    r.feed(1, 0.02, level_db=-70.0, audible=True)
    r.feed(int(600 / WIN_MS), 0.02, level_db=-70.0, audible=False)
    assert r.decisions[-1].threshold == pytest.approx(0.5)


def test_near_end_estimate_vetoes_speech_the_echo_made() -> None:
    # AEC3's output scores as speech (echo leaking through a cough), the near-end estimate not
    o = BargeInOptions(near_end_speech_min=0.3)
    r = Run(o)
    quiet_start(r)
    r.feed(8, 0.95, near_end_prob=0.05)
    assert r.actions() == []
    assert not r.decisions[-1].speaking  # no VAD onset either
    # the caller's own sound scores as speech: the usual onset
    r.feed(2, 0.95, near_end_prob=0.9)
    assert [a for _, a in r.actions()] == [Action.SOFT_YIELD]


def test_near_end_veto_needs_the_estimate_and_the_echo() -> None:
    o = BargeInOptions(near_end_speech_min=0.3)
    # not scored (no separation, or its echo bound not learnt yet): the onset as before
    r = Run(o)
    quiet_start(r)
    r.feed(2, 0.95, near_end_prob=None)
    assert [a for _, a in r.actions()] == [Action.SOFT_YIELD]
    # nothing played for longer than the echo tail: there is no echo to have made it
    r2 = Run(o, reply=False)
    quiet_start(r2)
    r2.feed(int(o.echo_tail_ms / WIN_MS) + 2, 0.02, level_db=-70.0, audible=False)
    r2.feed(2, 0.95, audible=False, near_end_prob=0.05)
    assert r2.decisions[-1].speaking
    # off (0): the estimate is not read
    r3 = Run(BargeInOptions(near_end_speech_min=0.0))
    quiet_start(r3)
    r3.feed(2, 0.95, near_end_prob=0.0)
    assert [a for _, a in r3.actions()] == [Action.SOFT_YIELD]


def test_the_caller_alone_scoring_as_speech_is_an_onset_where_the_echo_explains_little() -> None:
    # AEC3's double-talk suppression leaves its output at 0.2 for Silero; the near-end estimate
    # (the mic without what the played audio explains) scores 0.95, and the agent's audio
    # explains under half of the mic
    def run(near_end_prob: float | None, share: float | None,
            options: BargeInOptions | None = None) -> Run:
        r = Run(options or BargeInOptions(near_end_onset_prob=0.9))
        quiet_start(r)
        r.feed(3, 0.2, near_end_prob=near_end_prob, near_end_share=share)
        return r

    heard = run(0.95, 0.8)
    assert [a for _, a in heard.actions()] == [Action.SOFT_YIELD]
    assert heard.decisions[-1].speaking  # a VAD onset too: the STT hears the caller
    for unheard in (
        run(0.85, 0.8),  # the estimate under near_end_onset_prob
        run(None, 0.8),  # not scored (its echo bound not learnt yet)
        run(0.95, 0.2),  # most of the mic is what the agent played: its echo may be speech
        run(0.95, 0.8, BargeInOptions(near_end_onset_prob=None)),  # off
    ):
        assert unheard.actions() == []


def test_near_end_onset_prob_is_validated_and_needs_the_estimate() -> None:
    with pytest.raises(ValueError, match="near_end_onset_prob"):
        BargeInOptions(near_end_onset_prob=1.5)
    assert BargeInOptions(near_end_speech_min=0.0, near_end_onset_prob=0.9).separates_near_end
    assert not BargeInOptions(near_end_speech_min=0.0, near_end_onset_prob=None).separates_near_end


def test_resume_after_quiet_without_words() -> None:
    o = BargeInOptions()
    r = Run(o)
    quiet_start(r)
    r.feed(4, 0.95)  # a short burst: soft yield
    t_end = r.t
    r.feed(30, 0.02, level_db=-70.0)
    acts = r.actions()
    assert [a for _, a in acts] == [Action.SOFT_YIELD, Action.RESUME]
    resume_t = acts[1][0]
    assert t_end + o.resume_after_ms <= resume_t < t_end + o.resume_after_ms + WIN_MS
    assert r.c.state is ControllerState.SPEAKING


def test_words_confirm_and_backchannel_resumes() -> None:
    r = Run()
    quiet_start(r)
    r.feed(6, 0.95)
    d = r.c.on_transcript("Wait, stop", is_final=False, t_ms=r.t)
    assert d is not None and d.action is Action.INTERRUPT
    assert r.c.state is ControllerState.INTERRUPTED

    r = Run()
    quiet_start(r)
    r.feed(6, 0.95)
    assert r.c.on_transcript("uh-huh", is_final=False, t_ms=r.t) is None
    r.feed(3, 0.02, level_db=-70.0)
    d = r.c.on_transcript("Uh-huh.", is_final=True, t_ms=r.t)
    assert d is not None and d.action is Action.RESUME


def test_words_without_acoustic_onset_are_ignored() -> None:
    r = Run()
    quiet_start(r)
    assert r.c.on_transcript("turn to channel five for the news", is_final=True, t_ms=r.t) is None
    assert r.c.state is ControllerState.SPEAKING


def test_sustained_speech_confirms_without_transcript() -> None:
    o = BargeInOptions()
    r = Run(o)
    quiet_start(r)
    t0 = r.t
    r.feed(40, 0.95, features=VOICED)
    acts = r.actions()
    assert [a for _, a in acts] == [Action.SOFT_YIELD, Action.INTERRUPT]
    assert acts[1][0] - t0 == pytest.approx(o.confirm_speech_ms, abs=2 * WIN_MS)


def test_with_an_stt_sustained_sound_confirms_only_once_a_word_came() -> None:
    # a crowded room's babble: voiced, speech-like for Silero, and no word from the STT
    o = BargeInOptions()
    r = Run(o)
    r.c.transcripts_expected = True
    quiet_start(r)
    r.feed(int(o.max_soft_yield_ms / WIN_MS) + 2, 0.95, features=VOICED)
    assert [a for _, a in r.actions()] == [Action.SOFT_YIELD, Action.RESUME]
    # the same sound with a (backchannel) word in it: the STT hears speech, duration confirms
    r2 = Run(o)
    r2.c.transcripts_expected = True
    quiet_start(r2)
    t0 = r2.t
    r2.feed(3, 0.95, features=VOICED)
    assert r2.c.on_transcript("yeah", is_final=False, t_ms=r2.t) is None
    r2.feed(30, 0.95, features=VOICED)
    acts = r2.actions()
    assert [a for _, a in acts] == [Action.SOFT_YIELD, Action.INTERRUPT]
    assert acts[1][0] - t0 == pytest.approx(o.confirm_speech_ms, abs=2 * WIN_MS)
    # off: duration alone confirms, as without an STT
    r3 = Run(BargeInOptions(words_confirm_with_stt=False))
    r3.c.transcripts_expected = True
    quiet_start(r3)
    r3.feed(40, 0.95, features=VOICED)
    assert [a for _, a in r3.actions()] == [Action.SOFT_YIELD, Action.INTERRUPT]


def test_words_that_come_after_the_agent_resumed_still_interrupt() -> None:
    # a non-streaming STT: "wait, stop" (300 ms) pauses the agent, the caller stops, the agent
    # resumes after resume_after_ms, and only then the transcript arrives
    o = BargeInOptions()
    for text, interrupts in (("wait stop", True), ("okay", False)):
        r = Run(o)
        quiet_start(r)
        r.feed(10, 0.95, features=VOICED)
        r.feed(int(o.resume_after_ms / WIN_MS) + 2, 0.02, level_db=-70.0, features=None)
        assert [a for _, a in r.actions()] == [Action.SOFT_YIELD, Action.RESUME]
        d = r.c.on_transcript(text, is_final=True, t_ms=r.t + 150.0)
        assert (d is not None and d.action is Action.INTERRUPT) is interrupts, text
    # too late: the words belong to something else
    r = Run(o)
    quiet_start(r)
    r.feed(10, 0.95, features=VOICED)
    r.feed(int(o.resume_after_ms / WIN_MS) + 2, 0.02, level_db=-70.0, features=None)
    assert r.c.on_transcript("wait", is_final=True, t_ms=r.t + o.blocked_speech_window_ms + 50)\
        is None
    # the soft yield had its words (a backchannel) while held: nothing left to confirm later
    r = Run(o)
    quiet_start(r)
    r.feed(10, 0.95, features=VOICED)
    assert r.c.on_transcript("yeah", is_final=False, t_ms=r.t) is None
    r.feed(int(o.resume_after_ms / WIN_MS) + 2, 0.02, level_db=-70.0, features=None)
    assert [a for _, a in r.actions()] == [Action.SOFT_YIELD, Action.RESUME]
    assert r.c.on_transcript("yeah wait", is_final=True, t_ms=r.t + 100.0) is None


def _babble_hold(r: Run, o: BargeInOptions) -> None:
    """Wordless speech-like sound held to ``max_soft_yield_ms``, then quiet."""
    quiet_start(r)
    r.feed(int(o.max_soft_yield_ms / WIN_MS) + 2, 0.95, features=VOICED)
    r.feed(20, 0.02, level_db=-70.0, features=None)


def test_after_wordless_babble_onsets_wait_for_words() -> None:
    o = BargeInOptions()
    r = Run(o)
    r.c.transcripts_expected = True
    _babble_hold(r, o)
    assert [a for _, a in r.actions()] == [Action.SOFT_YIELD, Action.RESUME]
    # the babble swells again: no pause, only held back
    r.feed(10, 0.95, features=VOICED)
    assert [a for _, a in r.actions()] == [Action.SOFT_YIELD, Action.RESUME]
    assert r.c.state is ControllerState.SPEAKING
    assert r.c.on_transcript("mm-hmm", is_final=False, t_ms=r.t) is None  # a backchannel
    d = r.c.on_transcript("wait", is_final=False, t_ms=r.t)  # the caller's first word
    assert d is not None and d.action is Action.INTERRUPT
    # babble that never stops: the caller starts no new speech run, their words still count
    r2 = Run(o)
    r2.c.transcripts_expected = True
    quiet_start(r2)
    r2.feed(int(o.max_soft_yield_ms / WIN_MS) + 2 + 100, 0.95, features=VOICED)
    assert [a for _, a in r2.actions()] == [Action.SOFT_YIELD, Action.RESUME]
    d = r2.c.on_transcript("wait", is_final=False, t_ms=r2.t)
    assert d is not None and d.action is Action.INTERRUPT


def test_the_babble_backoff_ends_and_needs_an_stt() -> None:
    o = BargeInOptions(wordless_backoff_ms=3000.0)
    r = Run(o)
    r.c.transcripts_expected = True
    _babble_hold(r, o)
    r.feed(int(3000 / WIN_MS), 0.02, level_db=-70.0, features=None)  # the back-off runs out
    r.feed(3, 0.95, features=VOICED)
    assert [a for _, a in r.actions()][-1] is Action.SOFT_YIELD
    # without an STT nothing could confirm later, so onsets keep pausing
    for opts, stt in ((BargeInOptions(confirm_speech_ms=10_000.0), False),
                      (BargeInOptions(wordless_backoff_ms=0.0), True)):
        r2 = Run(opts)
        r2.c.transcripts_expected = stt
        _babble_hold(r2, opts)
        r2.feed(3, 0.95, features=VOICED)
        assert [a for _, a in r2.actions()] == [Action.SOFT_YIELD, Action.RESUME,
                                                Action.SOFT_YIELD]


def test_cough_like_sound_never_confirms_on_duration() -> None:
    r = Run()
    quiet_start(r)
    # bursty, noisy, unvoiced: alternating loud/quiet windows of flat spectrum
    for _ in range(12):
        r.feed(2, 0.9, level_db=-25.0, features=NOISY)
        r.feed(1, 0.6, level_db=-45.0, features=NOISY)
    r.feed(20, 0.02, level_db=-70.0, features=None)
    assert Action.INTERRUPT not in [a for _, a in r.actions()]
    assert r.actions()[-1][1] is Action.RESUME


def test_quiet_sound_below_noise_floor_gate_is_not_speech() -> None:
    r = Run()
    r.feed(200, 0.02, level_db=-40.0, features=None)  # a loud room: floor ~ -40 dBFS
    r.feed(10, 0.95, level_db=-36.0)  # "speech" only 4 dB above it (a distant TV)
    assert r.actions() == []
    r.feed(10, 0.95, level_db=-20.0)
    assert [a for _, a in r.actions()] == [Action.SOFT_YIELD]


def test_an_onset_must_rise_above_a_steady_background_while_the_agent_speaks() -> None:
    # Crowded-room babble the AEC cannot remove and Silero half believes: seconds of it at
    # -42 +- 2 dBFS, with a quiet room floor under it (the gaps between voices).
    def babble(r: Run) -> None:
        for i in range(150):
            r.feed(1, 0.55, level_db=-42.0 + 2.0 * np.sin(i), features=None)
            if i % 5 == 0:
                r.feed(1, 0.02, level_db=-56.0, features=None)

    r = Run()
    babble(r)
    bg = r.c.levels.background_db
    assert bg is not None and -41.0 < bg < -39.0
    r.feed(10, 0.9, level_db=-38.0)  # a louder voice in the babble: 2 dB over its loud end
    assert r.actions() == []
    r.feed(1, 0.02, level_db=-56.0, features=None)
    r.feed(10, 0.9, level_db=-26.0)  # the caller, 14 dB over it
    assert [a for _, a in r.actions()] == [Action.SOFT_YIELD]
    # without the agent talking, the caller's turn-taking is LiveKit's: the gate is not applied
    idle = Run(reply=False)
    babble(idle)
    idle.feed(10, 0.9, level_db=-38.0)
    assert idle.first(lambda d: d.speech_started) is not None
    # margin 0: the louder voice in the babble is an onset again
    loose = Run(BargeInOptions(background_margin_db=0.0))
    babble(loose)
    loose.feed(10, 0.9, level_db=-38.0)
    assert [a for _, a in loose.actions()] == [Action.SOFT_YIELD]


def test_nothing_is_speech_while_the_raw_mic_is_nearly_silent() -> None:
    # A line with no noise (near-digital silence: the floor is too low to gate with). AEC3's
    # output of bare room tone at -67 dBFS scored 0.97 on Silero; the raw mic held -66 dBFS.
    def run(options: BargeInOptions) -> Run:
        r = Run(options)
        # the floor; the reply's audio has not reached the mic yet
        r.feed(40, 0.0, level_db=-98.0, raw_level_db=-98.0, features=None, audible=False)
        r.feed(10, 0.97, level_db=-67.0, raw_level_db=-66.0, audible=False)
        return r

    assert run(BargeInOptions()).actions() == []
    assert [a for _, a in run(BargeInOptions(min_mic_dbfs=None)).actions()] == [Action.SOFT_YIELD]
    # the gate reads the raw mic, not AEC3's output: a caller it suppressed to -80 dBFS is heard
    r = Run()
    r.feed(40, 0.0, level_db=-98.0, raw_level_db=-98.0, features=None, audible=False)
    r.feed(10, 0.97, level_db=-80.0, raw_level_db=-20.0, audible=False)
    assert [a for _, a in r.actions()] == [Action.SOFT_YIELD]


def test_digital_silence_does_not_pin_the_noise_floor() -> None:
    # AEC3 outputs exact zeros for much of the agent's speech: those windows say nothing about
    # the room, and counted in they held the floor at -120 dBFS so that min_snr_db gated nothing
    r = Run()
    for _ in range(20):
        r.feed(6, 0.0, level_db=-120.0, features=None)
        r.feed(4, 0.02, level_db=-40.0, features=None)  # the room, between suppressed stretches
    assert r.c.levels.noise_floor_db == pytest.approx(-40.0)
    r.feed(10, 0.95, level_db=-36.0)  # a distant TV, 4 dB over the room
    assert r.actions() == []
    every = Run(BargeInOptions(noise_floor_min_dbfs=-float("inf")))
    for _ in range(20):
        every.feed(6, 0.0, level_db=-120.0, features=None)
        every.feed(4, 0.02, level_db=-40.0, features=None)
    every.feed(10, 0.95, level_db=-36.0)
    assert [a for _, a in every.actions()] == [Action.SOFT_YIELD]


def test_digital_silence_does_not_spread_the_background() -> None:
    # Silence before the call's audio starts (or AEC3's zeros) next to a steady babble: counted
    # in, the background spread over 20 dB and was never reported, so nothing gated the babble.
    def call(r: Run) -> None:
        r.feed(30, 0.0, level_db=-120.0, features=None)
        for i in range(100):
            r.feed(1, 0.3, level_db=-42.0 + 2.0 * np.sin(i), features=None)

    r = Run()
    call(r)
    bg = r.c.levels.background_db
    assert bg is not None and -41.0 < bg < -39.0
    r.feed(10, 0.9, level_db=-38.0)  # a louder voice in the babble
    assert r.actions() == []
    every = Run(BargeInOptions(noise_floor_min_dbfs=-float("inf")))
    call(every)
    assert every.c.levels.background_db is None
    every.feed(10, 0.9, level_db=-38.0)
    assert [a for _, a in every.actions()] == [Action.SOFT_YIELD]


def test_reply_end_clears_soft_yield() -> None:
    r = Run()
    quiet_start(r)
    r.feed(4, 0.95)
    r.c.set_reply_active(False, t_ms=r.t)
    assert r.c.state is ControllerState.LISTENING
    r.feed(30, 0.02, level_db=-70.0)
    assert [a for _, a in r.actions()] == [Action.SOFT_YIELD]


def test_max_soft_yield_resumes_when_nothing_confirms() -> None:
    o = BargeInOptions(confirm_speech_ms=10_000.0)
    r = Run(o)
    quiet_start(r)
    r.feed(int(3000 / WIN_MS), 0.95, features=NOISY)
    acts = [a for _, a in r.actions()]
    assert acts == [Action.SOFT_YIELD, Action.RESUME]


def test_options_validation() -> None:
    with pytest.raises(ValueError, match="activation_threshold"):
        BargeInOptions(activation_threshold=1.5)
    with pytest.raises(ValueError, match="onset_ms"):
        BargeInOptions(onset_ms=-1.0)
    with pytest.raises(ValueError, match="aec_rate_hz.*44100"):
        BargeInOptions(aec_rate_hz=44_100)
    with pytest.raises(TypeError):
        BargeInOptions().updated(onset=3)  # type: ignore[call-arg]


def _quiet_line(ctrl: BargeInController) -> None:
    """20 quiet windows while the agent plays, ending at 908 ms: the noise floor is known."""
    for i in range(20):
        ctrl.observe(Observation(t_ms=300 + 32 * i, window_ms=32.0, speech_prob=0.0,
                                 level_db=-70.0, agent_audible=True, residual_echo_db=-75.0))


def _held_back_then(ctrl: BargeInController, t_ms: float) -> None:
    """A speech-like window the echo gate blocks (probability over 0.5, residual too close)."""
    for i in range(20):  # a quiet line first: the noise floor is known
        ctrl.observe(
            Observation(t_ms=t_ms - 700 + 32 * i, window_ms=32.0, speech_prob=0.0,
                        level_db=-70.0, agent_audible=True, residual_echo_db=-75.0)
        )
    ctrl.observe(
        Observation(
            t_ms=t_ms, window_ms=32.0, speech_prob=0.8, level_db=-40.0, agent_audible=True,
            residual_echo_db=-41.0,
        )
    )


def test_words_after_held_back_speech_interrupt_without_a_soft_yield() -> None:
    ctrl = BargeInController(BargeInOptions(blocked_speech_words=2))
    ctrl.set_reply_active(True, t_ms=0.0)
    _held_back_then(ctrl, 1000.0)
    assert ctrl.state is ControllerState.SPEAKING  # no soft yield: the gate held it back
    assert ctrl.on_transcript("wait", is_final=False, t_ms=1300.0) is None  # one word: not yet
    assert ctrl.on_transcript("uh-huh okay", is_final=False, t_ms=1350.0) is None  # backchannel
    d = ctrl.on_transcript("wait which store", is_final=False, t_ms=1400.0)
    assert d is not None and d.action is Action.INTERRUPT


def test_by_default_one_word_after_held_back_speech_interrupts() -> None:
    ctrl = BargeInController(BargeInOptions())
    ctrl.set_reply_active(True, t_ms=0.0)
    _held_back_then(ctrl, 1000.0)
    assert ctrl.on_transcript("okay", is_final=False, t_ms=1300.0) is None  # a backchannel
    d = ctrl.on_transcript("okay wait", is_final=False, t_ms=1350.0)
    assert d is not None and d.action is Action.INTERRUPT


def test_words_without_held_back_speech_or_too_late_do_not_interrupt() -> None:
    ctrl = BargeInController(BargeInOptions())
    ctrl.set_reply_active(True, t_ms=0.0)
    assert ctrl.on_transcript("wait which store", is_final=False, t_ms=500.0) is None
    _held_back_then(ctrl, 1000.0)
    assert ctrl.on_transcript("wait which store", is_final=False, t_ms=2600.0) is None  # > 1.5 s
    off = BargeInController(BargeInOptions(blocked_speech_words=0))
    off.set_reply_active(True, t_ms=0.0)
    _held_back_then(off, 1000.0)
    assert off.on_transcript("wait which store", is_final=False, t_ms=1200.0) is None


def test_a_caller_only_the_near_end_estimate_hears_is_held_back_speech() -> None:
    # AEC3's suppression left the caller at 0.2 for Silero; the estimate without the agent, 0.8
    def run(near_end_prob: float | None) -> BargeInController:
        ctrl = BargeInController(BargeInOptions())
        ctrl.set_reply_active(True, t_ms=0.0)
        _quiet_line(ctrl)
        ctrl.observe(Observation(t_ms=1000.0, window_ms=32.0, speech_prob=0.2, level_db=-30.0,
                                 agent_audible=True, residual_echo_db=-75.0,
                                 near_end_prob=near_end_prob))
        return ctrl

    heard = run(0.8)
    assert heard.state is ControllerState.SPEAKING  # no onset on 0.2
    d = heard.on_transcript("no that's wrong", is_final=False, t_ms=1350.0)
    assert d is not None and d.action is Action.INTERRUPT
    for unheard in (run(0.1), run(None)):
        assert unheard.on_transcript("no that's wrong", is_final=False, t_ms=1350.0) is None


def test_the_agents_own_words_transcribed_confirm_nothing() -> None:
    agent = words_of("Your room at the harbor hotel is confirmed for three nights")
    ctrl = BargeInController(BargeInOptions())
    ctrl.set_reply_active(True, t_ms=0.0)
    _held_back_then(ctrl, 1000.0)
    assert ctrl.on_transcript(
        "harbor hotel is confirmed", is_final=False, t_ms=1200.0, agent_words=agent
    ) is None
    assert own_words_share(words_of("wait which hotel"), agent) == pytest.approx(1 / 3)
    d = ctrl.on_transcript("wait which hotel", is_final=False, t_ms=1250.0, agent_words=agent)
    assert d is not None and d.action is Action.INTERRUPT


def test_silero_is_needed_only_above_the_level_gates() -> None:
    r = Run()
    quiet_start(r)  # floor ~ -70 dBFS
    r.feed(40, 0.02, level_db=-60.0, features=None)
    assert not r.c.needs_speech_prob(-80.0)
    assert r.c.needs_speech_prob(-40.0)
    # No absolute floor: AEC3's suppressor can leave a caller at -70 dBFS, and Silero still
    # hears speech in that residue (judged against the residual echo, not skipped).
    silent = Run()
    silent.feed(40, 0.0, level_db=-120.0, features=None)
    assert silent.c.needs_speech_prob(-75.0)
    r.feed(2, 0.95, level_db=-25.0)
    assert r.c.state is ControllerState.SOFT_YIELD
    assert r.c.needs_speech_prob(-90.0)  # a soft yield weighs every window's probability


def test_skipping_silero_under_the_gate_changes_no_decision() -> None:
    rng = np.random.default_rng(5)
    levels = np.concatenate([rng.uniform(-75, -60, 150), rng.uniform(-75, -15, 400)])
    probs = rng.uniform(0, 1, len(levels))
    full, skipping = Run(), Run()
    for level, prob in zip(levels, probs, strict=True):
        full.feed(1, float(prob), level_db=float(level))
        p = float(prob) if skipping.c.needs_speech_prob(float(level)) else 0.0
        skipping.feed(1, p, level_db=float(level))
    assert full.actions() and full.actions() == skipping.actions()
    assert [d.speaking for d in full.decisions] == [d.speaking for d in skipping.decisions]


def test_the_mic_over_the_echo_counts_as_held_back_speech() -> None:
    """AEC3's double-talk suppression can garble a caller so Silero scores them low; the raw
    microphone clearly over the echo the path explains is the evidence the words then confirm."""

    def blocked_window(ctrl: BargeInController, *, over_echo: bool) -> None:
        for i in range(20):
            ctrl.observe(Observation(t_ms=300 + 32 * i, window_ms=32.0, speech_prob=0.0,
                                     level_db=-70.0, agent_audible=True, residual_echo_db=-75.0))
        ctrl.observe(Observation(t_ms=1000.0, window_ms=32.0, speech_prob=0.3, level_db=-40.0,
                                 agent_audible=True, residual_echo_db=-41.0,
                                 near_end_over_echo=over_echo))

    for over_echo, interrupts in ((True, True), (False, False)):
        ctrl = BargeInController(BargeInOptions())
        ctrl.set_reply_active(True, t_ms=0.0)
        blocked_window(ctrl, over_echo=over_echo)
        d = ctrl.on_transcript("wait which store", is_final=False, t_ms=1400.0)
        assert (d is not None and d.action is Action.INTERRUPT) is interrupts

    # AEC3 can erase such a caller entirely (-120 dBFS, under the noise floor): the level cue is
    # on the raw microphone, so it still counts (interrupt-002 was missed without this)
    ctrl = BargeInController(BargeInOptions())
    ctrl.set_reply_active(True, t_ms=0.0)
    _quiet_line(ctrl)
    ctrl.observe(Observation(t_ms=1000.0, window_ms=32.0, speech_prob=0.0, level_db=-120.0,
                             agent_audible=True, residual_echo_db=-41.0, near_end_over_echo=True))
    d = ctrl.on_transcript("wait which store", is_final=False, t_ms=1400.0)
    assert d is not None and d.action is Action.INTERRUPT


@pytest.mark.parametrize(
    "gate",
    [
        {"residual_echo_db": -41.0},  # cleaned level no louder than the expected leak
        {"aec_unsettled": True},  # AEC3 re-converging
        {"echo_likeness": 0.9},  # envelope follows the played audio
        {"raw_level_db": -15.0},  # AEC3 removed most of what the mic heard
    ],
)
def test_sound_no_delay_of_the_agent_explains_lifts_the_echo_gates(
    gate: dict[str, object],
) -> None:
    """Before the echo path is known, or while AEC3 re-converges, the echo gates hold a caller
    back; the spectral near-end cue says someone else is there whatever AEC3 did."""

    def onset(share: float | None) -> Run:
        r = Run()
        quiet_start(r)
        for _ in range(3):
            r.t += WIN_MS
            r.decisions.append(r.c.observe(Observation(
                t_ms=r.t, window_ms=WIN_MS, speech_prob=0.9, level_db=-40.0, agent_audible=True,
                residual_echo_db=gate.get("residual_echo_db", -80.0),  # type: ignore[arg-type]
                aec_unsettled=bool(gate.get("aec_unsettled", False)),
                echo_likeness=gate.get("echo_likeness"),  # type: ignore[arg-type]
                raw_level_db=gate.get("raw_level_db"),  # type: ignore[arg-type]
                near_end_share=share, features=VOICED)))
        return r

    held = onset(0.1)  # mostly explained by the agent's audio: the gate stands
    assert held.actions() == [] and held.decisions[-1].threshold > 1.0
    assert onset(None).actions() == []  # unknown: the gate stands
    lifted = onset(0.5)
    assert [a for _, a in lifted.actions()] == [Action.SOFT_YIELD]
    assert lifted.decisions[-1].threshold == pytest.approx(
        BargeInOptions().playback_threshold_min
    )


def _garbled_window(
    share: float, *, level_db: float = -40.0, options: BargeInOptions | None = None
) -> BargeInController:
    # Silero scores a garbled caller low (no onset) while the agent plays
    ctrl = BargeInController(options or BargeInOptions())
    ctrl.set_reply_active(True, t_ms=0.0)
    for i in range(20):
        ctrl.observe(Observation(t_ms=300 + 32 * i, window_ms=32.0, speech_prob=0.0,
                                 level_db=-70.0, agent_audible=True, residual_echo_db=-75.0))
    ctrl.observe(Observation(t_ms=1000.0, window_ms=32.0, speech_prob=0.2, level_db=level_db,
                             agent_audible=True, residual_echo_db=-41.0, near_end_share=share))
    return ctrl


def test_unexplained_sound_counts_as_held_back_speech() -> None:
    for share, interrupts in ((0.6, True), (0.1, False)):
        d = _garbled_window(share).on_transcript("wait which store", is_final=False, t_ms=1400.0)
        assert (d is not None and d.action is Action.INTERRUPT) is interrupts
    # even where AEC3 erased it (under the noise floor): the cue is on the raw microphone
    d = _garbled_window(0.6, level_db=-120.0).on_transcript("wait which", is_final=False,
                                                            t_ms=1400.0)
    assert d is not None and d.action is Action.INTERRUPT


def test_one_word_confirms_sound_that_was_surely_not_the_agent() -> None:
    # near_end_blocked_speech_words (1) where blocked_speech_words asks for two
    two = BargeInOptions(blocked_speech_words=2)
    d = _garbled_window(0.6, options=two).on_transcript("wait", is_final=False, t_ms=1400.0)
    assert d is not None and d.action is Action.INTERRUPT
    assert _garbled_window(0.6, options=two).on_transcript("okay", is_final=False,
                                                           t_ms=1400.0) is None  # fmt: skip
    assert _garbled_window(0.1, options=two).on_transcript("wait", is_final=False,
                                                           t_ms=1400.0) is None  # fmt: skip
    late = _garbled_window(0.6, options=two).on_transcript("wait", is_final=False,
                                                           t_ms=1000.0 + 1600.0)  # fmt: skip
    assert late is None  # blocked_speech_window_ms
