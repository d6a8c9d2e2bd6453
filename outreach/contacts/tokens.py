"""The token of a one-click unsubscribe URL: whom it unsubscribes, from which campaign, signed with the workspace's
secret.

A token names a contact and a campaign (or none), and only the workspace that made it can make one: it is
URL-safe base64, without padding, of a version byte, the two ids (8 bytes each, big-endian; 0 for no campaign)
and the first 16 bytes of their HMAC-SHA256 under a key derived from the workspace's secret for this use alone, so
that no other use of the secret (the suppression list's hashes) can ever yield a valid token. 33 bytes make 44
characters exactly: every character carries six bits of the token, so no two spellings read as the same token.
It is neither the Message-ID nor guessable from one, and it reads back only unaltered (`read_unsubscribe_token`).

Contact id 0 names no one (ids start at 1): the token of a sample letter outside the outbox (`templates render -f
eml`, a proof to the campaigner), whose link has the real shape but unsubscribes nobody when clicked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

VERSION = 1
NO_ONE = 0  # the contact id of a sample's token: it names no one
TOKEN_LENGTH = 44  # characters: base64 of 33 bytes, without padding (outreach/config.py counts on it)
_PURPOSE = b"outreach unsubscribe v1"  # the derived key's label: a key for these tokens alone
_ID_BYTES = 8
_MAC_BYTES = 16  # 128 bits: forging one takes 2**128 tries, each a request to the web app
_LARGEST_ID = 2**63 - 1  # what a database's integer key can hold
_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")  # ASCII only: \w would let other letters through


def unsubscribe_token(secret: bytes, contact_id: int, campaign_id: int | None) -> str:
    """The signed token of a one-click unsubscribe URL that names this contact and campaign (None: no campaign)."""
    if not secret:
        raise ValueError("no workspace secret to sign an unsubscribe token with")
    for name, value in (("contact_id", contact_id), ("campaign_id", campaign_id or 0)):
        if not 0 <= value <= _LARGEST_ID:
            raise ValueError(f"{name} {value} cannot be in an unsubscribe token")
    payload = bytes([VERSION]) + contact_id.to_bytes(_ID_BYTES, "big") + (campaign_id or 0).to_bytes(_ID_BYTES, "big")
    return base64.urlsafe_b64encode(payload + _mac(secret, payload)).decode("ascii")


def read_unsubscribe_token(secret: bytes, token: str) -> tuple[int, int | None] | None:
    """The contact id and campaign id (None: no campaign) a token names, or None for anything this workspace did
    not sign: forged, altered, cut short, too long, padded, of another alphabet or another workspace."""
    if not secret or not isinstance(token, str) or not _SHAPE.fullmatch(token):
        return None
    data = base64.urlsafe_b64decode(token)
    payload, mac = data[:-_MAC_BYTES], data[-_MAC_BYTES:]
    if payload[0] != VERSION or not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    contact_id = int.from_bytes(payload[1 : 1 + _ID_BYTES], "big")
    campaign_id = int.from_bytes(payload[1 + _ID_BYTES :], "big")
    return contact_id, campaign_id or None


def _mac(secret: bytes, payload: bytes) -> bytes:
    """The truncated HMAC-SHA256 of a payload, under the key derived from the secret for unsubscribe tokens."""
    key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
