"""The one normalisation both sides of the n-gram stage go through: Unicode NFKC, lower case, every character that is
not a letter or a digit (punctuation, symbols, the underscore) turned into a space, whitespace collapsed.

`normalize(text)` is the normalised string; `words(text)` its words as UTF-8 bytes, the unit the n-gram index keys on.
ASCII text, by far the commonest, takes a byte-translation shortcut that yields the same words as `normalize()`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

# ASCII letters lowered, ASCII digits kept, every other ASCII byte a space; bytes of multi-byte characters untouched.
_ASCII = bytes((c | 0x20) if chr(c).isalpha() and c < 128 else c if chr(c).isdigit() and c < 128 or c >= 128 else 0x20
               for c in range(256))
_MAX_PASSES = 4
_NON_ASCII = re.compile(rb"[\x80-\xff]")


def normalize(text: str) -> str:
    """`text` normalised; normalising the result again changes nothing.

    Outside ASCII one pass is not always a fixed point: lowering a Greek capital with an accent and an iota subscript
    ('Ά' + U+0345) yields characters that NFKC composes anew. Text that is not yet NFKC and lower case after a pass
    is passed again."""
    once = _pass(text)
    for _ in range(_MAX_PASSES):
        if _settled(once):
            return once
        once = _pass(once)
    return once


def _settled(once: str) -> bool:
    """Whether another pass would change nothing: ASCII, or NFKC and lower case already."""
    return once.isascii() or (unicodedata.is_normalized("NFKC", once) and once.lower() == once)


def _pass(text: str) -> str:
    return b" ".join(_pass_bytes(text).split()).decode("utf-8")


def _pass_bytes(text: str) -> bytes:
    """One pass, as UTF-8, with runs of spaces left in (the words are the same)."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII)
    # Bytes first: ASCII punctuation and spaces go by the table, and only the words that still hold a non-ASCII
    # character go through the (slow, per-character) Unicode pattern.
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    raw = text.lower().encode("utf-8", "surrogatepass").translate(_ASCII)
    pieces, done = [], 0
    hit = _NON_ASCII.search(raw)
    while hit:
        start = raw.rfind(b" ", 0, hit.start()) + 1            # the table turned every ASCII separator into b" "
        end = raw.find(b" ", hit.start())
        end = len(raw) if end < 0 else end
        pieces += [raw[done:start], _not_word().sub(" ", raw[start:end].decode("utf-8", "replace")).encode("utf-8")]
        done = end
        hit = _NON_ASCII.search(raw, end)
    pieces.append(raw[done:])
    return b"".join(pieces)


@cache
def _not_word() -> re.Pattern:
    """Runs of characters that are neither letters, digits nor combining marks. Python's \\w leaves out combining
    marks, which would split words of many scripts (and a lowered 'İ') at their accents; the marks of the Basic
    Multilingual Plane are added back here."""
    marks, start = [], None
    for code in range(0x10001):
        is_mark = code < 0x10000 and unicodedata.category(chr(code)).startswith("M")
        if is_mark and start is None:
            start = code
        elif not is_mark and start is not None:
            marks.append(f"\\u{start:04x}-\\u{code - 1:04x}")
            start = None
    return re.compile(f"(?:[^\\w{''.join(marks)}]|_)+")


def normalized_bytes(text: str) -> bytes:
    """`normalize(text)` as UTF-8, except that it may keep runs of spaces (its words are the same)."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII)
    raw = _pass_bytes(text)
    return raw if _settled(raw.decode("utf-8")) else normalize(text).encode("utf-8")


def words(text: str) -> list[bytes]:
    """The words of `normalize(text)`, each UTF-8 encoded."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII).split()
    return normalize(text).encode("utf-8").split()
