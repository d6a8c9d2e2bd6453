"""What the sender adds to each message before it leaves: List-Unsubscribe headers and a DKIM signature.

References: RFC 2369 (List-Unsubscribe: URLs in angle brackets, comma separated), RFC 8058 (one-click
unsubscribe: an https URL, `List-Unsubscribe-Post`, and a DKIM signature that covers both), RFC 6376 (DKIM),
RFC 8301 (RSA keys of at least 1024 bits). Pure: the key arrives as bytes, except in `load_dkim_signer`, which
reads the one file it is given at start. dkimpy stamps its `t=` tag from the clock itself.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from outreach.errors import ConfigError
from outreach.rendering.mime import one_line

# A header line may hold 998 octets (RFC 5322 2.1.1); mime.build_message keeps each URL whole on a line of its own.
_MAX_LINE = 998
_UNSUBSCRIBE_PREFIX = len("List-Unsubscribe: ")
# Blanks and controls would be folded away or start a header (RFC 2369 2: no blanks inside the brackets); an
# angle bracket would end the URL early; `=?` would read as an RFC 2047 encoded word.
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f<>\u2028\u2029]|=\?")
_DNS_NAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*"
)

# Signed when present; a name listed but absent is signed as absent (RFC 6376 5.4: dkimpy puts it in h= and
# hashes nothing for it), so adding a Reply-To or a List-Unsubscribe later breaks the signature. Each name is
# listed twice so that a second instance cannot be added either (RFC 6376 5.4.2 and 8.15, "oversigning"; dkimpy's
# default list does this for From only, and its default leaves out List-Unsubscribe-Post).
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
_INCLUDE_HEADERS = [name.lower().encode("ascii") for name in SIGNED_HEADERS] * 2
_MIN_KEY_BITS = 1024  # RFC 8301 3.2: verifiers reject smaller RSA keys
_TRIAL_MESSAGE = b"From: outreach@example.org\r\nSubject: key check\r\n\r\nkey check\r\n"


def unsubscribe_headers(mailto: str, url: str, token: str) -> list[tuple[str, str]]:
    """Return the List-Unsubscribe headers for one message: the URL (one-click) first, then the mailto."""
    links: list[str] = []
    if url:
        _check(url, "OUTREACH_UNSUBSCRIBE_URL")
        if not url.lower().startswith("https://"):
            raise ValueError(f"OUTREACH_UNSUBSCRIBE_URL is {url!r}: one-click unsubscribe needs https (RFC 8058 3.1)")
        links.append(_fitting(f"<{_with_token(url, token)}>", "OUTREACH_UNSUBSCRIBE_URL"))
    if mailto:
        _check(mailto, "OUTREACH_UNSUBSCRIBE_MAILTO")
        if "@" not in mailto or any(ch in mailto for ch in ",?&"):
            raise ValueError(f"OUTREACH_UNSUBSCRIBE_MAILTO is {mailto!r}: it must be one address")
        links.append(_fitting(f"<mailto:{mailto}?subject=unsubscribe>", "OUTREACH_UNSUBSCRIBE_MAILTO"))
    if not links:
        return []
    # Unfolded: build_message folds at the blank after each comma, never inside the brackets.
    headers = [("List-Unsubscribe", ", ".join(links))]
    if url:
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))  # RFC 8058 3.1
    return headers


def _check(value: str, setting: str) -> None:
    """Refuse a setting that would break the header or inject another one."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"{setting} holds a line break, which would start a header of its own")
    if not value.isascii() or _UNSAFE.search(value):
        raise ValueError(f"{setting} is {value!r}: it must be ASCII without blanks, controls, angle brackets or `=?`")


def _fitting(link: str, setting: str) -> str:
    """Return the link if it fits on one header line with the field name and a comma."""
    if _UNSUBSCRIBE_PREFIX + len(link) + 1 > _MAX_LINE:
        raise ValueError(f"{setting} is too long: with its token it passes a header line's {_MAX_LINE} octets")
    return link


def _with_token(url: str, token: str) -> str:
    """Put the URL-quoted token in place of `{token}`, or add it as the query parameter `token`."""
    quoted = quote(token, safe="")
    if "{token}" in url:
        return url.replace("{token}", quoted)
    parts = urlsplit(url)
    query = f"{parts.query.rstrip('&')}&token={quoted}" if parts.query.rstrip("&") else f"token={quoted}"
    return urlunsplit(parts._replace(query=query))


class _UnusableKeyError(ValueError):
    """The private key cannot sign, or signs wrongly."""


class DkimSigner:
    """Signs messages with one RSA key as `selector._domainkey.domain`: relaxed/relaxed, rsa-sha256."""

    def __init__(self, private_key: bytes, selector: str, domain: str) -> None:
        """Check the names and the key: it must be RSA, of 1024 bits or more, and sign what its public half verifies."""
        for what, name in (("selector", selector), ("domain", domain)):
            if not _DNS_NAME.fullmatch(name):
                raise ValueError(f"the DKIM {what} {name!r} is not an ASCII DNS name (use the IDNA form)")
        # dkimpy finds the PEM body with a pattern that needs LF line ends: a key saved on Windows would not load.
        self._key = private_key.replace(b"\r\n", b"\n")
        self.bits = _checked_key_bits(self._key)
        self.selector = selector
        self.domain = domain.lower()

    def __repr__(self) -> str:
        return f"DkimSigner(selector={self.selector!r}, domain={self.domain!r}, bits={self.bits})"  # never the key

    def sign(self, message: bytes) -> bytes:
        """Return the message (bytes with CRLF line ends) with its DKIM-Signature header prepended."""
        import dkim  # only where a key is configured: importing dkimpy costs every other command 27 ms

        signature: bytes = dkim.DKIM(message, linesep=b"\r\n").sign(
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self._key,  # dkimpy parses the PEM on every call: about 0.25 ms of the 7-9 ms a signature costs
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=_INCLUDE_HEADERS,
        )
        # dkimpy 1.1 folds the header twice, once with a literal CRLF and once with `linesep` (gen_header):
        # whatever a release does, every line of the message must end in CRLF (RFC 5322 2.1).
        return re.sub(rb"\r?\n", b"\r\n", signature) + message


def _checked_key_bits(pem: bytes) -> int:
    """Return the size of the RSA key in pem after a trial signature checked against its own public half."""
    import dkim.crypto

    try:
        key = dkim.crypto.parse_pem_private_key(pem)
    except (dkim.crypto.UnparsableKeyError, ValueError, IndexError) as error:  # binascii.Error is a ValueError
        raise _UnusableKeyError(f"not an unencrypted RSA private key in PEM ({one_line(str(error))})") from None
    bits: int = key["modulus"].bit_length()
    if bits < _MIN_KEY_BITS:
        raise _UnusableKeyError(f"the RSA key has {bits} bits; DKIM needs at least {_MIN_KEY_BITS} (RFC 8301 3.2)")
    # A key damaged inside (one wrong base64 character) still parses and signs, but with dkimpy's CRT every
    # signature would fail at every receiver: check one against the modulus and public exponent.
    public = {"modulus": key["modulus"], "publicExponent": key["publicExponent"]}
    signature = dkim.crypto.RSASSA_PKCS1_v1_5_sign(hashlib.sha256(_TRIAL_MESSAGE), key)
    if not dkim.crypto.RSASSA_PKCS1_v1_5_verify(hashlib.sha256(_TRIAL_MESSAGE), signature, public):
        raise _UnusableKeyError("the RSA private key is damaged: its signatures do not verify")
    return bits


def load_dkim_signer(key_path: Path, selector: str, domain: str) -> DkimSigner:
    """Read the PEM private key at key_path and return a signer, having signed a small message with it once."""
    import dkim

    try:
        pem = key_path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read the DKIM private key: {error.strerror or error}", where=str(key_path)) from None
    try:
        signer = DkimSigner(pem, selector, domain)
        signer.sign(_TRIAL_MESSAGE)  # what dkimpy cannot sign with fails here, at start, not on every message
    except (_UnusableKeyError, dkim.DKIMException) as error:
        raise ConfigError(
            one_line(str(error)),
            where=str(key_path),
            hint="make one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem`",
        ) from None
    except ValueError as error:  # the selector or the domain
        raise ConfigError(str(error)) from None
    return signer
