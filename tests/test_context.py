"""Heard text / unspoken tail splitting against TTS timings (pure)."""

from __future__ import annotations

import pytest

from livekit_bargein.context import (
    DEFAULT_NOTE_TEMPLATE,
    TimedText,
    heard_word_count,
    interrupted_reply,
    interruption_note,
    split_after_words,
)

FULL = "The headphones cost one hundred dollars. Shipping is free until Sunday."


def _words(text: str, *, start_s: float, step_s: float) -> list[TimedText]:
    return [
        TimedText(w + " ", start_s + i * step_s, start_s + (i + 1) * step_s - 0.05)
        for i, w in enumerate(text.split())
    ]


def test_word_timings_count_words_whose_start_has_played() -> None:
    spoken = _words(FULL, start_s=0.0, step_s=0.3)  # word i starts at 0.3 * i
    assert heard_word_count(spoken, 0.0) == (0, "word_timings")
    assert heard_word_count(spoken, 0.01) == (1, "word_timings")
    assert heard_word_count(spoken, 0.95) == (4, "word_timings")  # 0, .3, .6, .9
    assert heard_word_count(spoken, 99.0) == (len(FULL.split()), "word_timings")


def test_sentence_timings_spread_words_by_characters() -> None:
    s1, s2 = "The headphones cost one hundred dollars. ", "Shipping is free until Sunday."
    spoken = [TimedText(s1, 0.0), TimedText(s2, 2.0)]
    # half-way through the first sentence's span: words whose character offset is < 50 %
    n, method = heard_word_count(spoken, 1.0, audio_end_s=4.0)  # type: ignore[misc]
    assert method == "sentence_timings"
    assert n == 4  # "one" starts at character 20 of 41 (before the middle), "hundred" at 24
    # the last sentence ends at the audio's end
    assert heard_word_count(spoken, 3.99, audio_end_s=4.0) == (11, "sentence_timings")
    assert heard_word_count(spoken, 2.0, audio_end_s=4.0) == (6, "sentence_timings")


def test_no_timing_means_no_count() -> None:
    assert heard_word_count([TimedText("hello there", None)], 5.0) is None
    assert heard_word_count([], 5.0) is None


def test_split_keeps_formatting_and_rejoins() -> None:
    heard, tail = split_after_words(FULL, FULL, 4)
    assert heard == "The headphones cost one"
    assert tail == "hundred dollars. Shipping is free until Sunday."
    assert f"{heard} {tail}" == FULL
    assert split_after_words(FULL, FULL, 0) == ("", FULL)
    assert split_after_words(FULL, FULL, 100) == (FULL, "")


def test_split_matches_words_when_the_tts_text_was_transformed() -> None:
    full = "The **headphones** cost 🎧 one hundred dollars."
    spoken = "The headphones cost one hundred dollars."  # markdown and emoji filtered out
    heard, tail = split_after_words(full, spoken, 4)  # ... "one"
    assert heard == "The **headphones** cost 🎧 one"
    assert tail == "hundred dollars."


def test_tail_includes_text_the_tts_never_received() -> None:
    # the TTS got (and timed) only the first sentence; the LLM had generated more
    spoken = _words("The headphones cost one hundred dollars.", start_s=0.0, step_s=0.3)
    reply = interrupted_reply(
        full_text=FULL, spoken=spoken, played_s=0.65, audio_end_s=None, synchronized_text=""
    )
    assert reply.heard_text == "The headphones cost"
    assert reply.unspoken_tail == "one hundred dollars. Shipping is free until Sunday."
    assert reply.heard_from == "word_timings"
    assert reply.played_ms == pytest.approx(650.0)
    assert reply.as_extra()["unspoken_tail"] == reply.unspoken_tail


def test_without_timings_the_synchronized_transcript_decides() -> None:
    reply = interrupted_reply(
        full_text=FULL,
        spoken=[TimedText("The headphones cost one hundred dollars. ", None)],
        played_s=1.0,
        audio_end_s=None,
        synchronized_text="The headphones cost one",
    )
    assert reply.heard_from == "transcript"
    assert (reply.heard_text, reply.unspoken_tail) == (
        "The headphones cost one",
        "hundred dollars. Shipping is free until Sunday.",
    )


def test_note_template_and_off_switch() -> None:
    reply = interrupted_reply(
        full_text=FULL,
        spoken=_words(FULL, start_s=0.0, step_s=0.3),
        played_s=1.0,
        audio_end_s=None,
        synchronized_text="",
    )
    note = interruption_note(DEFAULT_NOTE_TEMPLATE, reply)
    assert note is not None and reply.unspoken_tail in note and reply.heard_text in note
    assert interruption_note("cut: {tail}", reply) == f"cut: {reply.unspoken_tail}"
    assert interruption_note(None, reply) is None
    done = interrupted_reply(
        full_text=FULL,
        spoken=_words(FULL, start_s=0, step_s=0.1),
        played_s=99,
        audio_end_s=None,
        synchronized_text="",
    )
    assert done.unspoken_tail == "" and interruption_note(DEFAULT_NOTE_TEMPLATE, done) is None
