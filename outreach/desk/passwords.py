"""Passwords of the campaigners who log in to the desk, stored as scrypt hashes that name their own parameters.

A stored hash reads `scrypt$LOG2N$R$P$SALT$HASH` (salt and hash in base64), so the parameters can grow later:
`needs_rehash` says which hashes were made with older ones, and a login rehashes them with the password it has.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass

from outreach.errors import InvalidValueError

# RFC 7914's parameters as OWASP's password storage cheat sheet recommends them (N = 2^15, r = 8, p = 1 is its
# first line): about 32 MiB and a tenth of a second per hash, for a handful of campaigners logging in.
LOG2_N, R, P = 15, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
SHORTEST, LONGEST = 10, 1024  # characters; the longest bounds what one login attempt may cost to check
_SCHEME = "scrypt"
# Limits on what a stored hash may ask of verify_password: a damaged row must not cost gigabytes of memory.
_MOST_LOG2_N, _MOST_R, _MOST_P = 20, 32, 16


@dataclass(frozen=True)
class _Stored:
    log2_n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def hash_password(password: str) -> str:
    """Hash a new password with a fresh random salt; refuse one shorter than 10 or longer than 1024 characters."""
    if not SHORTEST <= len(password) <= LONGEST:
        raise InvalidValueError(
            f"a password has {SHORTEST} to {LONGEST} characters; this one has {len(password)}",
            hint="a few words make a long password that is easy to type" if len(password) < SHORTEST else None,
        )
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, _Stored(LOG2_N, R, P, salt, b""), HASH_BYTES)
    return _format(_Stored(LOG2_N, R, P, salt, digest))


def verify_password(password: str, stored: str) -> bool:
    """Whether the password is the one the stored hash was made from; False for a stored string that is no hash."""
    parsed = _parse(stored)
    if parsed is None or len(password) > LONGEST:
        return False
    try:
        digest = _scrypt(password, parsed, len(parsed.digest))
    except (ValueError, MemoryError):  # parameters OpenSSL refuses
        return False
    return hmac.compare_digest(digest, parsed.digest)


def needs_rehash(stored: str) -> bool:
    """Whether the stored hash was made with other parameters than a new one would be (or is no hash at all)."""
    parsed = _parse(stored)
    return parsed is None or (parsed.log2_n, parsed.r, parsed.p, len(parsed.salt), len(parsed.digest)) != (
        LOG2_N, R, P, SALT_BYTES, HASH_BYTES
    )  # fmt: skip


def unmatchable_hash() -> str:
    """A stored hash with the current parameters that no password matches (its digest is all zeros): checking a
    password against it costs what checking against a real one does, for names that have no user."""
    return _format(_Stored(LOG2_N, R, P, bytes(SALT_BYTES), bytes(HASH_BYTES)))


def _scrypt(password: str, parameters: _Stored, length: int) -> bytes:
    # The same password typed on two systems may arrive composed differently (é as one code point or two): NIST
    # SP 800-63B 5.1.1.2 asks for NFKC or NFKD before hashing.
    secret = unicodedata.normalize("NFKC", password).encode("utf-8")
    n = 2**parameters.log2_n
    # scrypt needs 128 * r * N bytes and a little more; OpenSSL's default limit (32 MiB) is just below N = 2^15.
    memory = 128 * parameters.r * (n + parameters.p + 2) + 1024 * 1024
    return hashlib.scrypt(
        secret, salt=parameters.salt, n=n, r=parameters.r, p=parameters.p, maxmem=memory, dklen=length
    )


def _format(parsed: _Stored) -> str:
    salt = base64.b64encode(parsed.salt).decode("ascii")
    digest = base64.b64encode(parsed.digest).decode("ascii")
    return f"{_SCHEME}${parsed.log2_n}${parsed.r}${parsed.p}${salt}${digest}"


def _parse(stored: str) -> _Stored | None:
    """The parts of a stored hash, or None for anything else (another scheme, a damaged or empty string)."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME or not all(part.isdigit() and part.isascii() for part in parts[1:4]):
        return None
    log2_n, r, p = (int(part) for part in parts[1:4])
    if not (1 <= log2_n <= _MOST_LOG2_N and 1 <= r <= _MOST_R and 1 <= p <= _MOST_P):
        return None
    try:
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (binascii.Error, ValueError):
        return None
    if not salt or len(digest) < 16:
        return None
    return _Stored(log2_n, r, p, salt, digest)
