"""Stop sequences and UTF-8 boundaries in streamed output."""

from __future__ import annotations

from inference.decoding.textstream import TextAssembler


def _run(pieces: list[bytes], stops: tuple[str, ...]) -> tuple[str, bool]:
    text = TextAssembler(stops)
    out = "".join(text.feed(p) for p in pieces)
    return out + text.flush(), text.stopped


def test_multibyte_characters_split_across_tokens() -> None:
    data = "héllo ✓ 日本".encode()
    pieces = [data[i : i + 1] for i in range(len(data))]
    assert _run(pieces, ()) == ("héllo ✓ 日本", False)


def test_stop_sequence_split_across_tokens_is_cut() -> None:
    assert _run([b"Hello EN", b"D here"], ("END",)) == ("Hello ", True)


def test_partial_stop_prefix_is_released_when_it_is_not_a_stop() -> None:
    text = TextAssembler(("END",))
    assert text.feed(b"abc E") == "abc "
    assert text.feed(b"Nx") == "ENx"
    assert not text.stopped


def test_earliest_of_several_stops_wins() -> None:
    assert _run([b"one two three"], ("three", "two")) == ("one ", True)


def test_nothing_after_a_stop() -> None:
    text = TextAssembler(("|",))
    assert text.feed(b"a|b") == "a"
    assert text.feed(b"more") == ""
    assert text.flush() == ""
