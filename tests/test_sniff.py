"""Where the not-text flag starts: any NUL byte, or more than 10% of bytes not UTF-8."""

from __future__ import annotations

from watcher.reading.sniff import not_text


def test_text_is_not_flagged() -> None:
    assert not_text("a.log", b"plain ascii\n" * 100) is None
    assert not_text("a.log", "café déjà vu, naïve résumé\n".encode() * 100) is None
    assert not_text("a.log", "genuine \ufffd in the text\n".encode() * 100) is None


def test_nul_bytes_or_many_invalid_bytes_are_flagged() -> None:
    assert not_text("x.bin", b"a\x00b\n") == (
        "NotText: x.bin: 25% of its first 4 bytes is not text (1 NUL bytes); "
        "delivered decoded, invalid bytes as U+FFFD"
    )
    latin1 = "caf\xe9\n".encode("latin-1") * 100  # 20% not UTF-8
    message = not_text("l.log", latin1)
    assert message is not None and "(100 bytes that are not UTF-8)" in message
    mostly_text = b"caf\xe9 " + b"x" * 95  # 1% not UTF-8
    assert not_text("m.log", mostly_text) is None
