"""Email addresses: validation, the key that finds duplicates, and the hash that outlives erasure."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email

# RFC 5322 3.2.3 dot-atom in plain ASCII, the shape of nearly every real address. For such a local part
# email-validator accepts it as is, so only the domain needs the library's (costly) IDNA checks, once per domain.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_ASCII_DOMAIN = re.compile(r"[A-Za-z0-9.-]+")
_MAX_LOCAL = 64  # RFC 5321 4.5.3.1.1
_MAX_ADDRESS = 254  # RFC 3696 errata 1690, as email-validator checks it

# A dns.resolver.Resolver; tests hand email-validator a local one, since nothing here resolves names.
Resolver = Any


class InvalidAddressError(ValueError):
    """The text is not one valid email address; the message says why."""


@dataclass(frozen=True, slots=True)
class Address:
    """A validated address: how to write it, the key that identifies it, and whether it needs SMTPUTF8."""

    email: str
    key: str
    smtputf8: bool


def strip_decoration(raw: str) -> str:
    """Remove what exports wrap around an address: blanks, `mailto:`, `Name <...>`."""
    text = raw.strip()
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1 : -1].strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].split("?", 1)[0].strip()
    return text


# What official lists put between the addresses of one cell: `a@x; mailto:b@y`, `a@x / b@y`, one per line.
_BETWEEN_ADDRESSES = re.compile(r"[;,/\s]+")
_AROUND = ";,/ \t\r\n"  # the same, left before or after a cell's only address


def split_addresses(raw: str) -> list[str]:
    """The addresses a cell holds, in order, as written: one cell may hold several (`a@x; mailto:b@y`,
    `<a@x>, <b@y>`, one per line), each maybe decorated as `strip_decoration` knows. A cell with one `@` is one
    address however it is decorated (`Jean Dupont <a@x>`; a separator left before or after it aside), and is
    returned whole for `parse_address` to judge."""
    if raw.count("@") < 2:
        return [raw.strip(_AROUND)]
    found: list[str] = []
    for part in _BETWEEN_ADDRESSES.split(raw):
        text = strip_decoration(part.strip("\"'()[]")).strip("<>")  # and a bracket left unpaired (`<a@x`)
        if "@" in text:  # words of a display name between the addresses are left out
            found.append(text)
    return found or [raw]


def parse_address(raw: str, *, check_dns: bool = False, resolver: Resolver | None = None) -> Address:
    """Validate one address (syntax always; with `check_dns`, that its domain receives mail) and return its
    normal form and key."""
    address = _checked_syntax(raw)
    if check_dns:
        refusal = _undeliverable(address.key.rpartition("@")[2], resolver)
        if refusal is not None:
            raise InvalidAddressError(f"{address.email!r}: {refusal}")
    return address


@dataclass(frozen=True, slots=True)
class CellAddresses:
    """What one cell of addresses comes to: the contact's address (the first valid one), the other valid ones as
    its alternates (each once), and those that were not addresses, with why."""

    address: Address
    alternates: tuple[Address, ...] = ()
    unusable: tuple[str, ...] = ()


def parse_addresses(raw: str, *, check_dns: bool = False, resolver: Resolver | None = None) -> CellAddresses:
    """Validate the addresses of a cell (`split_addresses`); raise the first one's error if none is valid."""
    parts = split_addresses(raw)
    if len(parts) == 1:  # nearly every cell: one address, checked without the bookkeeping of several
        return CellAddresses(parse_address(parts[0], check_dns=check_dns, resolver=resolver))
    valid: dict[str, Address] = {}
    unusable: list[str] = []
    first_error: InvalidAddressError | None = None
    for text in parts:
        try:
            address = parse_address(text, check_dns=check_dns, resolver=resolver)
        except InvalidAddressError as error:
            first_error = first_error or error
            unusable.append(str(error))
            continue
        valid.setdefault(address.key, address)
    if not valid:
        assert first_error is not None
        raise first_error
    address, *alternates = valid.values()
    return CellAddresses(address, tuple(alternates), tuple(unusable))


def alternates_besides(address: str, *groups: Sequence[str]) -> tuple[str, ...]:
    """A contact's alternate addresses from several lists, in order, each once whatever its case, and never the
    address itself."""
    joined: dict[str, str] = {address.lower(): address}
    for group in groups:
        for email in group:
            joined.setdefault(email.lower(), email)
    return tuple(joined.values())[1:]


def _checked_syntax(raw: str) -> Address:
    text = strip_decoration(raw)
    if not text:
        raise InvalidAddressError("no email address")
    if any(sep in text for sep in (",", ";", " ")):
        raise InvalidAddressError(f"more than one address or a blank inside {text!r}")
    local, at, domain = text.rpartition("@")
    if (
        at
        and len(text) <= _MAX_ADDRESS
        and len(local) <= _MAX_LOCAL
        and _DOT_ATOM.fullmatch(local)
        and _ASCII_DOMAIN.fullmatch(domain)
    ):
        ascii_domain = _checked_domain(domain.lower())
        if isinstance(ascii_domain, EmailNotValidError):
            raise InvalidAddressError(f"{text!r}: {ascii_domain}")
        return Address(f"{local}@{ascii_domain}", f"{local.lower()}@{ascii_domain}", False)
    return _library_address(text)


def _library_address(text: str) -> Address:
    try:
        checked = validate_email(text, check_deliverability=False, allow_quoted_local=False)
    except EmailNotValidError as error:
        raise InvalidAddressError(f"{text!r}: {error}") from None
    ascii_domain = checked.ascii_domain.lower()
    return Address(
        checked.normalized,
        f"{checked.local_part.lower()}@{ascii_domain}",
        bool(checked.smtputf8),
    )


_domains: dict[str, str | EmailNotValidError] = {}


def _checked_domain(domain: str) -> str | EmailNotValidError:
    """Check a domain's syntax once with email-validator and remember the verdict (the domain or the error)."""
    verdict = _domains.get(domain)
    if verdict is None:
        try:
            verdict = validate_email(f"postmaster@{domain}", check_deliverability=False).ascii_domain.lower()
        except EmailNotValidError as error:
            verdict = error
        _domains[domain] = verdict
    return verdict


_deliverability: dict[tuple[str, Any], str | None] = {}  # keeps each resolver alive: no reused ids


def _undeliverable(ascii_domain: str, resolver: Resolver | None) -> str | None:
    """Ask DNS once per domain (and resolver) whether it receives mail; return why not, or None."""
    key = (ascii_domain, resolver)
    if key not in _deliverability:
        try:
            validate_email(f"postmaster@{ascii_domain}", check_deliverability=True, dns_resolver=resolver)
            _deliverability[key] = None
        except EmailNotValidError as error:
            _deliverability[key] = str(error)
    return _deliverability[key]


def ascii_domain_form(email: str) -> str:
    """The address with its domain in IDNA's ASCII form (`info@bücher.example` -> `info@xn--bcher-kva.example`),
    as it must stand in a header; a non-ASCII local part stays as it is (it needs SMTPUTF8)."""
    if email.isascii():
        return email
    local = email.rpartition("@")[0]
    return f"{local}@{parse_address(email).key.rpartition('@')[2]}"


def address_hash(key: str, secret: bytes) -> str:
    """Return the HMAC-SHA256 of an address key under the workspace's secret: what the suppression list keeps.

    Keyed, because a plain hash of an address is no erasure: anyone holding the database can hash a list of
    likely addresses (a parliament's are public) and find who was forgotten. Without the secret (the workspace's
    `secret.key`), the hashes say nothing.
    """
    return hmac.new(secret, key.encode("utf-8"), hashlib.sha256).hexdigest()


def unkeyed_address_hash(key: str) -> str:
    """Return the plain SHA-256 of an address key, as the suppression list kept it before it was keyed."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def address_hashes(key: str, secret: bytes) -> tuple[str, str]:
    """Both forms an address key may be on the suppression list under: keyed (what is written now) and unkeyed
    (written before hashes were keyed, and still honoured, so that nobody suppressed before comes back)."""
    return address_hash(key, secret), unkeyed_address_hash(key)
