"""BargeIn configuration: the turn handling it hands LiveKit, runtime option updates, and how
it reads the canceller's frames."""

from __future__ import annotations

import numpy as np
import pytest
from livekit.agents import AgentSession

from livekit_bargein import PROFILES, BargeIn, BargeInOptions, Observation
from livekit_bargein.aec import AecFrame
from livekit_bargein.engine import BLOCK_MIN_WORDS
from livekit_bargein.turn_detector import BargeInTurnDetector

_WINDOW_MS = 32.0


def _windows_to_onset(engine: BargeIn) -> int | None:
    """Quiet room, then confident loud speech: how many speech windows until START."""
    t_ms = 0.0
    for _ in range(20):
        t_ms += _WINDOW_MS
        engine.on_observation(
            Observation(t_ms=t_ms, window_ms=_WINDOW_MS, speech_prob=0.01, level_db=-70.0,
                        agent_audible=False)
        )  # fmt: skip
    for k in range(1, 10):
        t_ms += _WINDOW_MS
        d = engine.on_observation(
            Observation(t_ms=t_ms, window_ms=_WINDOW_MS, speech_prob=0.99, level_db=-20.0,
                        agent_audible=False)
        )  # fmt: skip
        if d.speech_started:
            return k
    return None


def test_turn_handling_blocks_livekit_interruptions() -> None:
    engine = BargeIn()
    th = engine.turn_handling()
    assert isinstance(th["turn_detection"], BargeInTurnDetector)
    engine.update_options(profile="telephony")  # the detector follows the plugin's options
    assert th["turn_detection"]._options is engine.options
    assert th["interruption"] == {
        "mode": "vad",
        "min_words": BLOCK_MIN_WORDS,
        "resume_false_interruption": False,
    }
    assert BLOCK_MIN_WORDS >= 1_000_000
    assert "endpointing" not in th


def test_turn_handling_passes_endpointing() -> None:
    th = BargeIn().turn_handling(turn_detection="stt", min_delay=0.4, max_delay=2.0)
    assert th["turn_detection"] == "stt"
    assert th["endpointing"] == {"min_delay": 0.4, "max_delay": 2.0}


async def test_agent_session_accepts_turn_handling() -> None:
    engine = BargeIn()
    session: AgentSession = AgentSession(
        vad=engine.vad, turn_handling=engine.turn_handling(min_delay=0.4)
    )
    opts = session.options
    assert opts.interruption["min_words"] == BLOCK_MIN_WORDS
    assert opts.interruption["resume_false_interruption"] is False
    assert opts.interruption["mode"] == "vad"
    assert isinstance(opts.turn_handling["turn_detection"], BargeInTurnDetector)
    assert opts.endpointing["min_delay"] == pytest.approx(0.4)


def test_update_options_switches_profile() -> None:
    engine = BargeIn()
    assert engine.profile == "speakerphone" and engine.options == PROFILES["speakerphone"]
    assert _windows_to_onset(engine) == 1  # 32 ms onset: one 32 ms window

    engine = BargeIn()
    engine.update_options(profile="telephony", onset_ms=80.0)
    assert engine.profile == "telephony"
    assert engine.options == PROFILES["telephony"].updated(onset_ms=80.0)
    assert engine.controller.options is engine.options
    assert engine.options.min_snr_db == PROFILES["telephony"].min_snr_db
    assert _windows_to_onset(engine) == 3  # the controller uses it: 80 ms needs three windows


def test_update_options_keeps_profile_for_plain_changes() -> None:
    engine = BargeIn(profile="headset")
    engine.update_options(offset_ms=400.0)
    assert engine.profile == "headset"
    assert engine.options == PROFILES["headset"].updated(offset_ms=400.0)
    assert engine.controller.options.offset_ms == 400.0


def test_explicit_options_win() -> None:
    opts = BargeInOptions(onset_ms=96.0)
    engine = BargeIn(options=opts)
    assert engine.options is opts and engine.controller.options is opts


def test_unknown_profile_names_it() -> None:
    with pytest.raises(ValueError, match="nope"):
        BargeIn(profile="nope")
    engine = BargeIn()
    before = engine.options
    with pytest.raises(ValueError, match="nope"):
        engine.update_options(profile="nope")
    assert engine.options is before and engine.profile == "speakerphone"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"onset_ms": -1.0}, ValueError),
        ({"activation_threshold": 1.5}, ValueError),
        ({"activation_threshold": 0.3, "deactivation_threshold": 0.4}, ValueError),
        ({"confirm_words": 0}, ValueError),
        ({"mic_gain_db": float("nan")}, ValueError),
        ({"no_such_option": 1}, TypeError),
    ],
)
def test_bad_option_raises_and_keeps_state(changes: dict[str, object], error: type) -> None:
    engine = BargeIn()
    before = engine.options
    with pytest.raises(error):
        engine.update_options(**changes)
    assert engine.options is before and engine.controller.options is before


def test_mic_gain_takes_either_sign() -> None:
    engine = BargeIn()
    engine.update_options(mic_gain_db=-6.0)
    assert engine.options.mic_gain_db == -6.0
    engine.update_options(mic_gain_db=12.0)
    assert engine.options.mic_gain_db == 12.0


def test_knob_variant_configs() -> None:
    from livekit_bargein.eval.configs import get_config

    cfg = get_config("bargein@onset_ms=32+resume_after_ms=300")
    assert "onset_ms=32" in cfg.description
    with pytest.raises(KeyError, match="onset"):
        get_config("bargein@onset=32")
    with pytest.raises(KeyError, match="must be a number"):
        get_config("bargein@onset_ms=fast")
    assert "near_end_onset_prob=none" in get_config("bargein@near_end_onset_prob=none").description
    with pytest.raises(KeyError, match="onset_ms"):
        get_config("bargein@onset_ms=none")  # not a knob that None turns off


def _aec_frame(*, moved: bool = False) -> AecFrame:
    return AecFrame(
        clean=np.zeros(160, np.float32), mic_level_db=-30.0, ref_level_db=-20.0,
        clean_level_db=-60.0, echo_level_db=-30.0, echo_path_gain_db=-10.0,
        residual_echo_db=-60.0, erle_db=30.0, far_end_active=True, double_talk=False,
        delay_ms=500.0, reference_moved=moved,
    )  # fmt: skip


def test_reference_moved_marks_aec_unsettled_for_a_while() -> None:
    # After a re-alignment AEC3 re-converges and its residual estimate understates the leak:
    # the engine tells the controller so (it then blocks echo-gated onsets) for 1.5 s.
    engine = BargeIn()
    for _ in range(10):
        engine.feed_aec_frame(_aec_frame(), -20.0)
    assert not engine.echo_state().aec_unsettled
    engine.feed_aec_frame(_aec_frame(moved=True), -20.0)
    assert engine.echo_state().aec_unsettled
    for _ in range(148):
        engine.feed_aec_frame(_aec_frame(), -20.0)
    assert engine.echo_state().aec_unsettled
    for _ in range(2):
        engine.feed_aec_frame(_aec_frame(), -20.0)
    assert not engine.echo_state().aec_unsettled


def test_the_session_transcribes_the_caller_when_it_or_its_agent_streams_interim_words() -> None:
    from livekit.agents import Agent

    from livekit_bargein.engine import _transcribes
    from livekit_bargein.eval.stt import OracleSTT

    class _Session:
        def __init__(self, stt: object, agent: Agent | None) -> None:
            self.stt = stt
            self._agent = agent

        @property
        def current_agent(self) -> Agent:
            if self._agent is None:
                raise RuntimeError("AgentSession isn't running")
            return self._agent

    stt = OracleSTT()
    assert _transcribes(_Session(stt, None))  # not started: the session's STT
    assert _transcribes(_Session(stt, Agent(instructions="x")))
    assert not _transcribes(_Session(None, Agent(instructions="x")))
    assert not _transcribes(_Session(stt, Agent(instructions="x", stt=None)))  # agent opts out
    assert _transcribes(_Session(None, Agent(instructions="x", stt=stt)))
    # a non-streaming STT (``openai.STT()``'s default, behind LiveKit's StreamAdapter) sends its
    # words after the caller stops: no use to a soft yield that would wait for them
    final_only = OracleSTT(interim_results=False)
    assert not _transcribes(_Session(final_only, Agent(instructions="x")))
    assert not _transcribes(_Session(stt, Agent(instructions="x", stt=final_only)))
