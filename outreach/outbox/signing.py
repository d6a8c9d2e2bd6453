"""What the sender adds to each letter before it leaves, besides Date: a DKIM signature by the From domain's key.

References: RFC 8058 (one-click unsubscribe needs a DKIM signature that covers both its headers), RFC 6376 (DKIM),
RFC 8301 (RSA keys of at least 1024 bits). Pure: the key arrives as bytes, except in `load_dkim_signer`, which
reads the one file it is given at start. dkimpy stamps its `t=` tag from the clock itself.
"""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

from outreach.config import DKIM_KEY_MAX_BYTES
from outreach.errors import ConfigError
from outreach.rendering.mime import one_line

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
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
_INCLUDE_HEADERS = [name.lower().encode("ascii") for name in SIGNED_HEADERS] * 2
_MIN_KEY_BITS = 1024  # RFC 8301 3.2: verifiers reject smaller RSA keys
_TRIAL_MESSAGE = b"From: outreach@example.org\r\nSubject: key check\r\n\r\nkey check\r\n"


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
        # Stat before opening (opening a FIFO waits for a writer) and read no more than a key can hold: a path
        # changed since the settings were checked must not read /dev/zero until memory runs out.
        if not stat.S_ISREG(key_path.stat().st_mode):
            raise ConfigError("not a regular file, so no DKIM private key", where=str(key_path))
        with key_path.open("rb") as file:
            pem = file.read(DKIM_KEY_MAX_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"cannot read the DKIM private key: {error.strerror or error}", where=str(key_path)) from None
    if len(pem) > DKIM_KEY_MAX_BYTES:
        raise ConfigError(f"more than {DKIM_KEY_MAX_BYTES:,} bytes, so no DKIM private key", where=str(key_path))
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
