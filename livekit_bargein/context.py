"""What the caller heard and what the agent had not yet said (pure logic, no LiveKit objects).

On a hard interrupt the assistant ``ChatMessage`` keeps the heard text as its content and the rest
of the reply under ``message.extra[EXTRA_KEY]``; the next LLM call gets a short note built from
:data:`DEFAULT_NOTE_TEMPLATE`. The glue that applies this to a session is ``conversation.py``.

Heard words come from the TTS's own timing of its text (``TimedString``s in the audio it sent):

* word timestamps (Cartesia, ElevenLabs, ...): a word is heard once playback passed its start;
* sentence timestamps only (any non-streaming TTS through LiveKit's ``StreamAdapter``): words are
  spread over the sentence's audio by their share of its characters (an estimate);
* no timing at all: the caller is assumed to have heard what LiveKit's transcript synchronizer
  says (the message's own content), and the rest of the generated text is the tail.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

EXTRA_KEY = "livekit_bargein"
"""Key of ``ChatMessage.extra`` holding :class:`InterruptedReply` as a dict
(``heard_text``, ``unspoken_tail``, ``full_text``, ``played_ms``, ``heard_from``)."""

DEFAULT_NOTE_TEMPLATE = (
    'You were interrupted. The user heard you say: "{heard}" You had not yet said: "{tail}" '
    "Respond to the user's interruption first. Then continue from where you stopped only if it "
    "is still relevant, without repeating what the user already heard."
)
"""Note the next LLM call sees after an interruption; ``{heard}`` and ``{tail}`` are filled in.
Pass ``note_template=None`` to turn the note off."""

_SPACE = re.compile(r"\S+")
_NORM = re.compile(r"[^\w]+")


@dataclass(frozen=True)
class TimedText:
    """A piece of the text the TTS spoke, placed on the reply's audio clock."""

    text: str
    start_s: float | None
    """Start of this text in the reply's audio, seconds (None: the TTS gave no timing)."""
    end_s: float | None = None


@dataclass(frozen=True)
class InterruptedReply:
    heard_text: str
    """Prefix of ``full_text`` the caller heard (what the assistant message now says)."""
    unspoken_tail: str
    """The rest of ``full_text``: ``heard_text + " " + unspoken_tail`` rejoins it."""
    full_text: str
    """Everything the LLM generated for this reply, including text the TTS never reached."""
    played_ms: float
    heard_from: str
    """``word_timings``, ``sentence_timings`` or ``transcript`` (see the module docstring)."""

    def as_extra(self) -> dict[str, object]:
        return {
            "heard_text": self.heard_text,
            "unspoken_tail": self.unspoken_tail,
            "full_text": self.full_text,
            "played_ms": round(self.played_ms, 1),
            "heard_from": self.heard_from,
        }


def heard_word_count(
    spoken: Sequence[TimedText], played_s: float, *, audio_end_s: float | None = None
) -> tuple[int, str] | None:
    """How many words of the TTS text had started playing by ``played_s``.

    Returns ``(count, method)`` with method ``word_timings`` or ``sentence_timings``, or None when
    the pieces carry no timing. A piece of one word uses its own start; a piece of several words
    (a sentence) spreads them over its span, up to the next piece's start (or ``audio_end_s``).
    """
    timed = [t for t in spoken if t.start_s is not None and _SPACE.search(t.text)]
    if not timed:
        return None
    multi_word = False
    count = 0
    for i, piece in enumerate(timed):
        words = _SPACE.findall(piece.text)
        start = float(piece.start_s)  # type: ignore[arg-type]
        if len(words) == 1:
            count += start < played_s
            continue
        multi_word = True
        end = (
            timed[i + 1].start_s
            if i + 1 < len(timed)
            else (piece.end_s if piece.end_s is not None else audio_end_s)
        )
        if end is None or end <= start:
            count += len(words) if start < played_s else 0
            continue
        # each word starts at its character offset's share of the piece's span
        total_chars = sum(len(w) + 1 for w in words)
        offset = 0
        for w in words:
            if start + (end - start) * offset / total_chars < played_s:
                count += 1
            offset += len(w) + 1
    return count, ("sentence_timings" if multi_word else "word_timings")


def split_after_words(full_text: str, spoken_text: str, n_spoken_words: int) -> tuple[str, str]:
    """Split ``full_text`` after the word matching the ``n_spoken_words``-th of ``spoken_text``.

    ``spoken_text`` is what the TTS received, which LiveKit's text transforms may have changed
    (markdown or emoji removed), so words are matched, not counted.

    Returns:
        ``(heard, tail)``: ``heard`` keeps the original formatting up to the end of the last heard
        word; ``tail`` is the rest, without leading whitespace.
    """
    full_words = list(_SPACE.finditer(full_text))
    if n_spoken_words <= 0 or not full_words:
        return "", full_text.strip()
    spoken = [_norm(w) for w in _SPACE.findall(spoken_text)]
    n = min(n_spoken_words, len(spoken))
    full_norm = [_norm(m.group()) for m in full_words]
    k = _matching_index(spoken, full_norm, n)
    if k <= 0:
        return "", full_text.strip()
    cut = full_words[k - 1].end()
    return full_text[:cut].strip(), full_text[cut:].strip()


def interrupted_reply(
    *,
    full_text: str,
    spoken: Sequence[TimedText],
    played_s: float,
    audio_end_s: float | None,
    synchronized_text: str,
) -> InterruptedReply:
    """Split one interrupted reply into what was heard and what was not (see module docstring)."""
    spoken_text = "".join(t.text for t in spoken)
    counted = heard_word_count(spoken, played_s, audio_end_s=audio_end_s)
    if counted is not None and spoken_text.strip():
        n, method = counted
        heard, tail = split_after_words(full_text, spoken_text, n)
    else:
        method = "transcript"
        n = len(_SPACE.findall(synchronized_text))
        heard, tail = split_after_words(full_text, synchronized_text, n)
    return InterruptedReply(
        heard_text=heard,
        unspoken_tail=tail,
        full_text=full_text,
        played_ms=played_s * 1000.0,
        heard_from=method,
    )


def interruption_note(template: str | None, reply: InterruptedReply) -> str | None:
    """The next turn's note for ``reply``; None when notes are off or nothing was left unsaid."""
    if template is None or not reply.unspoken_tail:
        return None
    return template.format(heard=reply.heard_text, tail=reply.unspoken_tail)


def _norm(word: str) -> str:
    return _NORM.sub("", word.lower().replace("\u2019", "'"))


def _matching_index(spoken: list[str], full: list[str], n: int) -> int:
    """Index in ``full`` just after the word aligned with ``spoken[n - 1]``."""
    if spoken[:n] == full[:n]:
        return n  # the common case: the TTS got the text as generated
    k = 0
    for a, b, size in difflib.SequenceMatcher(
        a=spoken, b=full, autojunk=False
    ).get_matching_blocks():
        if size == 0:
            break
        if a >= n:
            break
        k = b + min(size, n - a)
    return k
