"""Field values of a contact, cleaned and checked: text, role, gender, country, language, zone, tags."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from functools import cache

import pycountry
from babel import Locale, UnknownLocaleError
from babel.languages import get_official_languages

from outreach.vocabulary import ROLES

# C0 and C1 controls (CR, LF, TAB, NUL, NEL ...) and the Unicode line and paragraph separators: none of them
# belongs in a name, and CR/LF in a field could become a header line of a message later on.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class InvalidValueError(ValueError):
    """A field holds a value that means nothing here; the message names the value."""


def clean_text(value: str) -> str:
    """Replace control characters with a blank, collapse runs of blanks, trim."""
    if value.isprintable():  # the common case, checked in C: no controls, no blanks but the plain space
        value = value.strip()
        if "  " not in value:
            return value
    if _CONTROLS.search(value):
        value = _CONTROLS.sub(" ", value)
    return " ".join(value.split())


def fold(value: str) -> str:
    """Lower-case, strip accents and punctuation: the form in which loosely written names are compared."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^\w]+", " ", bare).split())


_ROLE_ALIASES = {
    **{role: role for role in ROLES},
    "president": "head_of_state",
    "head of state": "head_of_state",
    "king": "monarch",
    "queen": "monarch",
    "grand duke": "monarch",
    "prime minister": "head_of_government",
    "chancellor": "head_of_government",
    "head of government": "head_of_government",
    "member of parliament": "mp",
    "parliamentarian": "mp",
    "deputy": "mp",
    "member of the european parliament": "mep",
    "signatory": "prospect",
}


@cache  # a file repeats a few dozen values thousands of times
def role(value: str) -> str:
    """Return one of the fixed roles for a loosely written one (`Head of State` -> `head_of_state`)."""
    key = fold(value).replace("_", " ")
    found = _ROLE_ALIASES.get(key) or _ROLE_ALIASES.get(key.replace(" ", "_"))
    if found is None:
        raise InvalidValueError(f"role {value!r} is not one of {', '.join(ROLES)}")
    return found


_GENDERS = {
    "f": "f", "female": "f", "woman": "f", "w": "f", "femme": "f", "frau": "f", "weiblich": "f", "k": "f",
    "m": "m", "male": "m", "man": "m", "homme": "m", "mann": "m", "mannlich": "m",
}  # fmt: skip
_UNKNOWN_GENDERS = {"", "x", "d", "u", "unknown", "other", "divers", "diverse", "n a", "na", "none"}


@cache
def gender(value: str) -> str | None:
    """Return `f`, `m` or None (unknown) for a gender column's value; never guessed from anything else."""
    key = fold(value)
    if key in _UNKNOWN_GENDERS:
        return None
    found = _GENDERS.get(key)
    if found is None:
        raise InvalidValueError(f"gender {value!r} is not f, m or empty")
    return found


# Honorifics that say which grammatical gender the letter must use. Titles such as Dr or Prof say nothing.
_HONORIFIC_GENDERS = {
    "mr": "m", "mister": "m", "sir": "m", "lord": "m", "herr": "m", "monsieur": "m", "m": "m", "senor": "m",
    "sr": "m", "signor": "m", "sig": "m", "pan": "m", "heer": "m", "dhr": "m", "king": "m", "grand duke": "m",
    "prince": "m", "kyrios": "m",
    "ms": "f", "mrs": "f", "miss": "f", "madam": "f", "madame": "f", "mme": "f", "mlle": "f", "mademoiselle": "f",
    "frau": "f", "dame": "f", "lady": "f", "senora": "f", "sra": "f", "signora": "f", "sig ra": "f", "pani": "f",
    "mevrouw": "f", "mevr": "f", "queen": "f", "grand duchess": "f", "princess": "f", "kyria": "f",
}  # fmt: skip


@cache
def gender_of_honorific(honorific: str) -> str | None:
    """Return the gender an honorific implies (`Frau` -> `f`), or None when it implies none."""
    return _HONORIFIC_GENDERS.get(fold(honorific))


# Names in use that ISO 3166 does not list: the EU's own codes and common short forms.
_COUNTRY_ALIASES = {"uk": "GB", "el": "GR", "kosovo": "XK", "xk": "XK", "holland": "NL", "turkey": "TR"}
# Languages whose names for countries are accepted besides English (the appeal's Europe, and its neighbours).
_NAME_LANGUAGES = [
    "bg",
    "cs",
    "da",
    "de",
    "el",
    "en",
    "es",
    "et",
    "fi",
    "fr",
    "ga",
    "hr",
    "hu",
    "is",
    "it",
    "lt",
    "lv",
    "mt",
    "nb",
    "nl",
    "nn",
    "pl",
    "pt",
    "ro",
    "sk",
    "sl",
    "sq",
    "sr",
    "sv",
    "tr",
    "uk",
    "ka",
    "hy",
    "ru",
    "be",
]


@cache
def _country_codes() -> dict[str, str]:
    codes = {c.alpha_2.lower(): c.alpha_2 for c in pycountry.countries}
    codes.update({c.alpha_3.lower(): c.alpha_2 for c in pycountry.countries})
    codes.update(_COUNTRY_ALIASES)
    return codes


@cache
def _country_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for language in _NAME_LANGUAGES:
        try:
            territories = Locale.parse(language).territories
        except UnknownLocaleError:  # pragma: no cover - depends on the installed CLDR data
            continue
        for code, name in territories.items():
            if len(code) == 2 and code.isalpha():
                names.setdefault(fold(name), code)
    for entry in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            name = getattr(entry, attribute, None)
            if name:
                names[fold(name)] = entry.alpha_2
    return names


@cache
def country(value: str) -> str:
    """Return the ISO 3166-1 alpha-2 code for a country code or name in one of Europe's languages."""
    key = fold(value)
    key = key.removeprefix("the ")
    found = _country_codes().get(key) or _country_names().get(key)
    if found is None:
        raise InvalidValueError(f"country {value!r} is not a country name or ISO code")
    return found


@cache
def _language_codes() -> dict[str, str]:
    codes: dict[str, str] = {}
    for entry in pycountry.languages:
        code = getattr(entry, "alpha_2", None)
        if code is not None:
            codes[code] = code
            codes[entry.alpha_3] = code
            if bibliographic := getattr(entry, "bibliographic", None):
                codes[bibliographic] = code
    return codes


@cache
def _language_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for entry in pycountry.languages:
        code = getattr(entry, "alpha_2", None)
        if code is None:
            continue
        names[fold(entry.name)] = code
        try:
            own_name = Locale.parse(code).get_display_name(code)
        except (UnknownLocaleError, ValueError):
            continue
        if own_name:
            names.setdefault(fold(own_name), code)
    return names


_LANGUAGE_TAG = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)*")


@cache
def language(value: str) -> str:
    """Return the ISO 639-1 code for a language code, tag or name (`fr-BE`, `French`, `français` -> `fr`)."""
    text = value.strip()
    tag = _LANGUAGE_TAG.fullmatch(text)
    found = (tag and _language_codes().get(tag.group(1).lower())) or _language_names().get(fold(text))
    if not found:
        raise InvalidValueError(f"language {value!r} is not a language name or ISO 639 code")
    return found


@cache
def official_languages(country_code: str) -> tuple[str, ...]:
    """Return the ISO 639-1 codes of a country's official languages (CLDR), most spoken first.

    The languages official in the whole country by law; only where there are none, those official in fact (English
    in the US). Languages official in a region (Catalan in Spain, Frisian in the Netherlands) or in fact beside a
    legal one (Russian in Ukraine, Swiss German beside German) are left out: a letter to the country's institutions
    is written in none of them by default.
    """
    found = get_official_languages(country_code) or get_official_languages(country_code, de_facto=True)
    codes = _language_codes()
    return tuple(dict.fromkeys(codes[code] for code in found if code in codes))


def language_of_country(country_code: str) -> str | None:
    """Return the language of a country with exactly one official language (`DE` -> `de`), else None."""
    found = official_languages(country_code)
    return found[0] if len(found) == 1 else None


def has_several_languages(country_code: str) -> bool:
    """Whether a country has several official languages (`BE`, `CH`), so its language cannot be implied."""
    return len(official_languages(country_code)) > 1


@cache
def _zones() -> dict[str, str]:
    return {zone.lower(): zone for zone in zoneinfo.available_timezones()}


@cache
def time_zone(value: str) -> str:
    """Return the IANA name of a time zone (`europe/paris` -> `Europe/Paris`)."""
    found = _zones().get(value.strip().lower().replace(" ", "_"))
    if found is None:
        raise InvalidValueError(f"time zone {value!r} is not an IANA zone such as Europe/Paris")
    return found


def tags(value: str) -> tuple[str, ...]:
    """Split a tags cell on `;`, `|` or `,` into lower-case tags without blanks, in order, once each."""
    found: dict[str, None] = {}
    for part in re.split(r"[;|,]", value):
        tag = "-".join(clean_text(part).lower().split())
        if tag:
            found[tag] = None
    return tuple(found)
