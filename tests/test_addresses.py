"""Addresses: the fast path agrees with email-validator, keys find duplicates, hashes outlive erasure."""

from __future__ import annotations

import hashlib

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.contacts.addresses import (
    InvalidAddressError,
    address_hash,
    address_hashes,
    parse_address,
    unkeyed_address_hash,
)

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-."
local_parts = st.text(alphabet=ATEXT, min_size=1, max_size=70)
labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=20)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)


@settings(max_examples=400, deadline=None)
@given(local_parts, domains)
def test_the_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    text = f"{local}@{domain}"
    try:
        expected = validate_email(text, check_deliverability=False, allow_quoted_local=False)
    except EmailNotValidError:
        with pytest.raises(InvalidAddressError):
            parse_address(text)
        return
    found = parse_address(text)
    assert found.email == expected.normalized
    assert found.key == f"{expected.local_part.lower()}@{expected.ascii_domain.lower()}"
    assert found.smtputf8 is False


@pytest.mark.parametrize(
    ("raw", "email", "key"),
    [
        ("  Jane.Doe@Example.ORG ", "Jane.Doe@example.org", "jane.doe@example.org"),
        ("mailto:pm@example.org", "pm@example.org", "pm@example.org"),
        ("MAILTO:pm@example.org?subject=Hi", "pm@example.org", "pm@example.org"),
        ("Prime Minister <pm@example.org>", "pm@example.org", "pm@example.org"),
        ("info@bücher.example", "info@bücher.example", "info@xn--bcher-kva.example"),
    ],
)
def test_addresses_as_exports_write_them(raw: str, email: str, key: str) -> None:
    found = parse_address(raw)
    assert (found.email, found.key) == (email, key)


def test_an_address_that_needs_smtputf8_is_flagged() -> None:
    assert parse_address("Ольга@example.org").smtputf8 is True


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "no email address"),
        ("a@example.org; b@example.org", "more than one address"),
        ("no-at-sign", "must have an @-sign"),
        ("two..dots@example.org", "two periods"),
        ("x@localhost", "'x@localhost'"),
        ("x@-bad-.example.org", "'x@-bad-.example.org'"),
    ],
)
def test_invalid_addresses_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidAddressError, match=reason):
        parse_address(raw)


def test_the_erasure_hash_is_stable_keyed_and_does_not_show_the_address() -> None:
    secret = bytes(range(32))
    digest = address_hash("pm@example.org", secret)
    assert digest == address_hash(parse_address("PM@Example.org").key, secret)
    assert len(digest) == 64 and "example" not in digest
    assert digest != address_hash("pm@example.org", bytes(32)), "another workspace's secret, another hash"
    assert digest != hashlib.sha256(b"pm@example.org").hexdigest(), "not the plain hash anyone can compute"
    assert address_hashes("pm@example.org", secret) == (digest, unkeyed_address_hash("pm@example.org"))


class LocalResolver:
    """A resolver for email-validator's DNS check that answers from a dict (nothing here reaches DNS)."""

    def __init__(self, mail_exchangers: dict[str, str]) -> None:
        self.mail_exchangers = mail_exchangers
        self.asked: list[tuple[str, str]] = []

    def resolve(self, name: str, rdtype: str, *args: object, **kwargs: object) -> list[object]:
        import dns.resolver

        self.asked.append((str(name), rdtype))
        if str(name) not in self.mail_exchangers:
            raise dns.resolver.NXDOMAIN
        if rdtype != "MX":
            raise dns.resolver.NoAnswer

        class Exchanger:
            preference = 10
            exchange = self.mail_exchangers[str(name)]

        return [Exchanger()]


def test_check_dns_asks_once_per_domain_and_names_a_domain_that_receives_no_mail() -> None:
    resolver = LocalResolver({"parliament.example.org": "mx.parliament.example.org."})
    assert (
        parse_address("a@parliament.example.org", check_dns=True, resolver=resolver).key == "a@parliament.example.org"
    )
    parse_address("b@Parliament.example.org", check_dns=True, resolver=resolver)
    assert [rdtype for _, rdtype in resolver.asked].count("MX") == 1
    with pytest.raises(InvalidAddressError, match=r"'c@nowhere\.example\.org': The domain name .* does not exist"):
        parse_address("c@nowhere.example.org", check_dns=True, resolver=resolver)
