"""Credentials cut out of a response body before it goes into an error; no I/O.

A debugging proxy or a misconfigured server may echo the request's headers into an
error page, and the SDK keeps the body on the error it raises. ``redact_body`` turns
the body bytes into text with every trace of the credentials replaced by
``[credentials removed]``, in each form a server plausibly writes them:

- as sent: the base64 of ``app_token:private_key`` (so ``Basic …`` keeps only the
  word ``Basic``), with or without its ``=`` padding, and its URL-safe variant;
- the private key alone, and the ``app_token:private_key`` pair;
- with any character escaped: percent-encoded (either hex case, ``+`` for a space),
  a JSON ``\\uXXXX`` or ``\\/`` escape, an HTML character reference;
- re-wrapped: a line break (LF, CR or CRLF, with indentation) between any two
  characters, as MIME and folded headers wrap base64;
- in another charset: the text is read in the charset the response declares, and
  also byte for byte, so that UTF-16 or UTF-32 text read as 8-bit (a NUL beside each
  character), UTF-8 read as Latin-1 or cp1252, and a character lost to U+FFFD are
  caught whichever charset the body claims.

The result is checked, not trusted: when the text in the declared charset, once
redacted, still holds a credential in its bytes (the declaration was wrong), the body
is read by its byte-order mark, then as UTF-8 (undecodable bytes as U+FFFD), then as
Latin-1, and the first reading with nothing left is kept. Latin-1 reads every byte as
one character, so that last reading always redacts completely.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["REDACTED", "credential_texts", "redact_body"]

#: What stands in the body where a credential was.
REDACTED: Final = "[credentials removed]"

# A line break (with the spaces around it) a server may wrap text at, or the NULs
# beside each character of UTF-16/UTF-32 text read as 8-bit. At most one per gap, so a
# failed match backtracks over a few characters per gap, never without end.
_SEPARATOR: Final = r"(?:[ \t]*(?:\r\n|\r|\n)[ \t]*|\x00{1,3})?"
_HTML_NAMED: Final = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}


def credential_texts(authorization: str) -> tuple[str, ...]:
    """What a server could echo back of a Basic ``authorization``.

    The base64 (its ``=`` padding is matched as optional: a server may drop it), the
    ``app_token:private_key`` pair, and the private key alone.
    """
    encoded = authorization.partition(" ")[2].strip()
    try:
        pair = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        pair = ""
    password = pair.partition(":")[2]
    texts = (encoded, pair, password)
    return tuple(dict.fromkeys(text for text in texts if text))


def _hex(value: int, width: int) -> str:
    """``value`` as ``width`` hex digits, matching either case."""
    return "".join(
        f"[{digit}{digit.upper()}]" if digit.isalpha() else digit for digit in f"{value:0{width}x}"
    )


def _eight_bit_readings(char: str) -> set[str]:
    """``char``'s bytes in the charsets a server may use, read as 8-bit text.

    An ASCII character reads as itself in all of them (UTF-16's NUL is the separator's).
    """
    readings = {char}
    if char.isascii():
        return readings
    for encoding in ("utf-8", "utf-16-le", "utf-16-be", "cp1252"):
        try:
            data = char.encode(encoding, errors="surrogatepass")
        except UnicodeEncodeError:
            continue
        readings.add(data.decode("latin-1"))
        # cp1252 leaves five bytes undefined; a browser shows them as Latin-1 does.
        readings.add("".join(_cp1252(byte) for byte in data))
    return readings


def _cp1252(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


def _character_forms(char: str) -> str:
    """A regular expression for every way a server may write one character."""
    code = ord(char)
    forms = [re.escape(reading) for reading in sorted(_eight_bit_readings(char))]
    forms.append("".join(f"%{_hex(byte, 2)}" for byte in char.encode("utf-8", "surrogatepass")))
    if char == " ":
        forms.append(r"\+")
    if char == "/":
        forms.append(r"\\/")
    if code <= 0xFFFF:  # noqa: PLR2004 - one JSON escape; others need a surrogate pair
        forms.append(rf"\\[uU]{_hex(code, 4)}")
    forms.append(rf"&#0*{code};?")
    forms.append(rf"&#[xX]0*{_hex(code, 1)};?")
    if char in _HTML_NAMED:
        forms.append(f"&{_HTML_NAMED[char]};")
    if code > 0x7F:  # noqa: PLR2004 - a non-ASCII character a wrong decoding replaced
        forms.append("\ufffd")
    return "(?:" + "|".join(forms) + ")"


# Cached per set of credentials (a client's pipeline asks with the same texts on every
# error); the pattern holds what the pipeline holds anyway.
@functools.lru_cache(maxsize=16)
def _pattern(texts: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, so the pair wins over the key alone inside it.
    alternatives = []
    for text in sorted(texts, key=len, reverse=True):
        variants = {text}
        if text.isascii() and ("+" in text or "/" in text):
            variants.add(text.replace("+", "-").replace("/", "_"))  # URL-safe base64
        for variant in variants:
            # Trailing "=" (base64 padding, which a server may drop) is optional; a text
            # of nothing but "=" keeps them all, or it would match the empty string.
            body = variant.rstrip("=") or variant
            padding = variant[len(body) :]
            alternatives.append(
                _SEPARATOR.join(_character_forms(char) for char in body)
                + (f"(?:{_SEPARATOR}{_character_forms('=')})*" if padding else "")
            )
    return re.compile("|".join(alternatives))


def _decode(content: bytes, charset: str) -> str | None:
    try:
        return content.decode(charset)
    except (LookupError, UnicodeError, TypeError):
        return None


def _byte_order_mark(content: bytes) -> tuple[str, ...]:
    """The charset a byte-order mark at the start of ``content`` names, if any."""
    if content.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return ("utf-32",)
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ("utf-16",)
    return ()


def _holds_credentials(redacted: str, charset: str, pattern: re.Pattern[str]) -> bool:
    """Whether ``redacted`` still holds a credential between its markers, as text or in
    its bytes in ``charset`` read byte for byte (as when ``charset`` was the wrong one)."""
    for piece in redacted.split(REDACTED):
        try:
            data = piece.encode(charset, errors="replace")
        except (UnicodeError, LookupError):  # e.g. "idna", which cannot write every text back
            return True
        if pattern.search(piece) or pattern.search(data.decode("latin-1")):
            return True
    return False


def redact_body(content: bytes, charset: str | None, texts: Sequence[str]) -> str:
    """The body as text, every form of every one of ``texts`` replaced by ``REDACTED``.

    ``charset`` is the one the response declares (``None``: UTF-8). A charset Python
    does not know, or one the bytes are not valid in, falls back to UTF-8 and then to
    Latin-1, as does a reading that still holds a credential (see the module docstring).
    """
    if not texts:
        text = _decode(content, charset or "utf-8")
        return content.decode("utf-8", errors="replace") if text is None else text
    pattern = _pattern(tuple(texts))
    for reading in (charset or "utf-8", *_byte_order_mark(content)):
        text = _decode(content, reading)
        if text is not None:
            redacted = pattern.sub(REDACTED, text)
            if not _holds_credentials(redacted, reading, pattern):
                return redacted
    # As httpx reads an undecodable body. A credential character lost to U+FFFD is
    # matched as that, so this reading holds one only in a form Latin-1 shows.
    redacted = pattern.sub(REDACTED, content.decode("utf-8", errors="replace"))
    if not _holds_credentials(redacted, "utf-8", pattern):
        return redacted
    return pattern.sub(REDACTED, content.decode("latin-1"))
