"""Is a file text? Looked at once, on the first bytes read from its start.

A file that is mostly not text (NUL bytes, or many bytes that are not UTF-8) is still
delivered, decoded as every file is; it is flagged once so that the operator sees why
its outbox file is not what went in.
"""

from __future__ import annotations

SNIFF_BYTES = 64 * 1024
# Share of the sample, in replaced characters, past which a file without NULs is flagged.
MAX_INVALID_SHARE = 0.10
_REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
_REPLACEMENT_UTF8 = _REPLACEMENT.encode()


def not_text(name: str, sample: bytes) -> str | None:
    """Why `sample` (the first bytes of the file `name`) is not text, or None when it is.

    ASCII without NULs, the common case, costs two scans in C and nothing else.
    """
    nuls = sample.count(b"\0")
    if not nuls and sample.isascii():
        return None
    invalid = 0
    if not sample.isascii():
        decoded = sample.decode("utf-8", "replace")
        # Genuine U+FFFD characters in the file are text.
        invalid = decoded.count(_REPLACEMENT) - sample.count(_REPLACEMENT_UTF8)
    if not nuls and invalid <= MAX_INVALID_SHARE * len(sample):
        return None
    share = round(100 * (nuls + invalid) / len(sample))
    what = ", ".join(
        part
        for part in (
            f"{nuls} NUL bytes" if nuls else "",
            f"{invalid} bytes that are not UTF-8" if invalid else "",
        )
        if part
    )
    where = "64 KiB" if len(sample) == SNIFF_BYTES else f"{len(sample)} bytes"
    return (
        f"NotText: {name}: {share}% of its first {where} is not text ({what}); "
        "delivered decoded, invalid bytes as U+FFFD"
    )


__all__ = ["SNIFF_BYTES", "not_text"]
