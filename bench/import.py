"""Benchmark `outreach contacts import` as a user runs it, on a generated CSV of N contacts.

    .venv/bin/python bench/import.py [--rows N] [--keep] [--json]

Writes a CSV of N contacts (default 100,000) to a temporary folder, row by row, with a fixed seed; creates a fresh
workspace with `outreach init`; then times `outreach contacts import FILE --json` as a child process (wall clock from
start to exit), reads the peak RSS of its largest process from os.wait4 and samples the memory of the command and its
child processes together (the importer reads large files in a second process). The JSON summary the command prints
must account for every row generated. For context it also times a baseline in this process: reading the same CSV
with the csv module and checking each address with email-validator, without any database.

The child runs without the caller's OUTREACH_* environment variables, so it always uses the fresh workspace's SQLite
database and never a database that the environment points to.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

SEED = 20261129
DEFAULT_ROWS = 100_000
INVALID_SHARE = 0.01
DUPLICATE_SHARE = 0.01
RECENT = 5000  # duplicates repeat one of the last RECENT valid rows: some in the importer's batch, some before

HEADER = [
    "email", "first_name", "last_name", "honorific", "gender", "position", "role", "organization",
    "country", "language", "time_zone", "tags", "party",
]  # fmt: skip

# Every domain ends in the reserved `.example` top-level domain (RFC 2606): no generated address reaches anyone.
# Per country: ISO code, English name, language, time zone, parliament domains (shared by all its members),
# the label for its other domains, and the script its names are written in.
COUNTRIES = [
    ("AT", "Austria", "de", "Europe/Vienna", ["parlament.gv.at"], "at", "latin"),
    ("BE", "Belgium", "nl", "Europe/Brussels", ["dekamer.be", "lachambre.be", "senate.be"], "be", "latin"),
    ("BG", "Bulgaria", "bg", "Europe/Sofia", ["parliament.bg"], "bg", "cyrillic"),
    ("HR", "Croatia", "hr", "Europe/Zagreb", ["sabor.hr"], "hr", "latin"),
    ("CY", "Cyprus", "el", "Asia/Nicosia", ["parliament.cy"], "cy", "greek"),
    ("CZ", "Czechia", "cs", "Europe/Prague", ["psp.cz", "senat.cz"], "cz", "latin"),
    ("DK", "Denmark", "da", "Europe/Copenhagen", ["ft.dk"], "dk", "latin"),
    ("EE", "Estonia", "et", "Europe/Tallinn", ["riigikogu.ee"], "ee", "latin"),
    ("FI", "Finland", "fi", "Europe/Helsinki", ["eduskunta.fi"], "fi", "latin"),
    ("FR", "France", "fr", "Europe/Paris", ["assemblee-nationale.fr", "senat.fr"], "fr", "latin"),
    ("DE", "Germany", "de", "Europe/Berlin", ["bundestag.de", "bundesrat.de"], "de", "latin"),
    ("GR", "Greece", "el", "Europe/Athens", ["hellenicparliament.gr"], "gr", "greek"),
    ("HU", "Hungary", "hu", "Europe/Budapest", ["parlament.hu"], "hu", "latin"),
    ("IE", "Ireland", "en", "Europe/Dublin", ["oireachtas.ie"], "ie", "latin"),
    ("IT", "Italy", "it", "Europe/Rome", ["camera.it", "senato.it"], "it", "latin"),
    ("LV", "Latvia", "lv", "Europe/Riga", ["saeima.lv"], "lv", "latin"),
    ("LT", "Lithuania", "lt", "Europe/Vilnius", ["lrs.lt"], "lt", "latin"),
    ("LU", "Luxembourg", "fr", "Europe/Luxembourg", ["chd.lu"], "lu", "latin"),
    ("MT", "Malta", "mt", "Europe/Malta", ["parlament.mt"], "mt", "latin"),
    ("NL", "Netherlands", "nl", "Europe/Amsterdam", ["tweedekamer.nl", "eerstekamer.nl"], "nl", "latin"),
    ("PL", "Poland", "pl", "Europe/Warsaw", ["sejm.gov.pl", "senat.gov.pl"], "pl", "latin"),
    ("PT", "Portugal", "pt", "Europe/Lisbon", ["ar.parlamento.pt"], "pt", "latin"),
    ("RO", "Romania", "ro", "Europe/Bucharest", ["cdep.ro", "senat.ro"], "ro", "latin"),
    ("SK", "Slovakia", "sk", "Europe/Bratislava", ["nrsr.sk"], "sk", "latin"),
    ("SI", "Slovenia", "sl", "Europe/Ljubljana", ["dz-rs.si"], "si", "latin"),
    ("ES", "Spain", "es", "Europe/Madrid", ["congreso.es", "senado.es"], "es", "latin"),
    ("SE", "Sweden", "sv", "Europe/Stockholm", ["riksdagen.se"], "se", "latin"),
    ("GB", "United Kingdom", "en", "Europe/London", ["parliament.uk"], "uk", "latin"),
    ("NO", "Norway", "nb", "Europe/Oslo", ["stortinget.no"], "no", "latin"),
    ("CH", "Switzerland", "de", "Europe/Zurich", ["parl.admin.ch"], "ch", "latin"),
    ("UA", "Ukraine", "uk", "Europe/Kyiv", ["rada.gov.ua"], "ua", "cyrillic"),
    ("MD", "Moldova", "ro", "Europe/Chisinau", ["parlament.md"], "md", "latin"),
    ("RS", "Serbia", "sr", "Europe/Belgrade", ["parlament.gov.rs"], "rs", "cyrillic"),
    ("GE", "Georgia", "ka", "Asia/Tbilisi", ["parliament.ge"], "ge", "latin"),
    ("US", "United States", "en", "America/New_York", ["house.gov", "senate.gov"], "us", "latin"),
    ("CA", "Canada", "en", "America/Toronto", ["parl.gc.ca"], "ca", "latin"),
]  # fmt: skip
EUROPARL = "europarl.europa.eu"

# (as written, as in an address). Non-Latin names come with the transliteration their owners' addresses use.
NAMES = {
    "latin": (
        [("Anna", "anna", "f"), ("Maria", "maria", "f"), ("Ágota", "agota", "f"), ("Inês", "ines", "f"),
         ("Jūratė", "jurate", "f"), ("Zofia", "zofia", "f"), ("Sophie", "sophie", "f"), ("Élodie", "elodie", "f"),
         ("Ingrid", "ingrid", "f"), ("Chiara", "chiara", "f"), ("Lucía", "lucia", "f"), ("Siobhán", "siobhan", "f"),
         ("Thomas", "thomas", "m"), ("Łukasz", "lukasz", "m"), ("Jan", "jan", "m"), ("Pierre", "pierre", "m"),
         ("Jürgen", "juergen", "m"), ("Matteo", "matteo", "m"), ("José", "jose", "m"), ("Lars", "lars", "m"),
         ("Tomáš", "tomas", "m"), ("Mihai", "mihai", "m"), ("Seán", "sean", "m"), ("Henrik", "henrik", "m")],
        [("Müller", "mueller"), ("Schmidt", "schmidt"), ("Wiśniewski-Brzęk", "wisniewski-brzek"),
         ("Dubois", "dubois"), ("Rossi", "rossi"), ("García López", "garcia.lopez"), ("Novák", "novak"),
         ("Kairytė", "kairyte"), ("Szentmiklósi", "szentmiklosi"), ("Van der Berg", "vanderberg"),
         ("O'Brien", "obrien"), ("Johansson", "johansson"), ("Popescu", "popescu"), ("Nielsen", "nielsen"),
         ("Kowalczyk", "kowalczyk"), ("Conceição", "conceicao"), ("Horvat", "horvat"), ("Virtanen", "virtanen")],
    ),
    "cyrillic": (
        [("Иван", "ivan", "m"), ("Георги", "georgi", "m"), ("Олександр", "oleksandr", "m"),
         ("Драган", "dragan", "m"), ("Мария", "maria", "f"), ("Олена", "olena", "f"), ("Милица", "milica", "f"),
         ("Десислава", "desislava", "f")],
        [("Петров", "petrov"), ("Иванова", "ivanova"), ("Шевченко", "shevchenko"), ("Јовановић", "jovanovic"),
         ("Коваленко", "kovalenko"), ("Димитров", "dimitrov"), ("Николић", "nikolic")],
    ),
    "greek": (
        [("Γιώργος", "giorgos", "m"), ("Νίκος", "nikos", "m"), ("Κώστας", "kostas", "m"),
         ("Ελένη", "eleni", "f"), ("Μαρία", "maria", "f"), ("Αικατερίνη", "aikaterini", "f")],
        [("Παπαδόπουλος", "papadopoulos"), ("Γεωργίου", "georgiou"), ("Οικονόμου", "oikonomou"),
         ("Κωνσταντίνου", "konstantinou"), ("Χριστοδούλου", "christodoulou")],
    ),
}  # fmt: skip
HONORIFICS = {"f": ["Ms", "Mrs", "Dr", "Prof", "Frau", "Madame", ""], "m": ["Mr", "Dr", "Prof", "Herr", "Monsieur", ""]}
PARTIES = ["EPP", "S&D", "Renew", "Greens/EFA", "ECR", "PfE", "The Left", "ESN", "NI", ""]
TAGS = [
    "wave-1|academics", "wave-1|parliament", "wave-1|meps", "wave-2|parliament", "wave-2|ngo",
    "wave-2|press|follow-up", "wave-1", "academics;wave-3", "",
]  # fmt: skip
# Kinds of contact: share, role cell choices, positions, where their addresses are.
KINDS = [
    (0.45, ["mp", "Member of Parliament", "mp", ""], ["Member of Parliament", "Senator", "Deputy Speaker"], "parl"),
    (0.08, ["mep", "Member of the European Parliament"], ["Member of the European Parliament"], "europarl"),
    (0.05, ["minister", "official", "Minister"], ["Minister of Foreign Affairs", "Head of Unit"], "gov"),
    (0.30, ["prospect", "", "Signatory"], ["Professor of Law", "Historian", "Research Fellow"], "uni"),
    (0.08, ["prospect", ""], ["Director", "Policy Officer", "Campaigner"], "ngo"),
    (0.04, ["prospect", ""], ["Editor", "Correspondent", "Columnist"], "mail"),
]  # fmt: skip


@dataclass
class Generated:
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    non_latin: int = 0
    domains: int = 0
    bytes: int = 0


def _domains(rng: random.Random) -> dict[str, dict[str, list[str]]]:
    """About 300 domains: each country's parliament and government, universities, NGOs; a few mail services."""
    per_country: dict[str, dict[str, list[str]]] = {}
    for code, _name, _lang, _tz, parliaments, tld, _script in COUNTRIES:
        per_country[code] = {
            "parl": [f"{d}.example" for d in parliaments],
            "gov": [f"mfa.gov.{tld}.example", f"government.{tld}.example"],
            "uni": [f"uni-{i}.{tld}.example" for i in range(1, 4)],
            "ngo": [f"{n}.{tld}.example" for n in ("civil-society", "rights-watch")],
        }
    shared = {
        "europarl": [f"{EUROPARL}.example"],
        "mail": [f"{n}.example" for n in ("gmail.com", "outlook.com", "proton.me", "gmx.de", "orange.fr", "web.de")],
    }
    return {**per_country, "*": shared}


def _plain_local(rng: random.Random, first: str, last: str, serial: int) -> str:
    """A local part in one of the shapes institutions use, made unique with the row's serial number."""
    shape = rng.random()
    if shape < 0.5:
        base = f"{first}.{last}"
    elif shape < 0.75:
        base = f"{first[0]}.{last}"
    elif shape < 0.9:
        base = f"{first[0]}{last}"
    else:
        base = f"{last}-{first}"
    return f"{base}.{serial:x}"


def _invalid_address(rng: random.Random, local: str, domain: str) -> str:
    """An address that the importer must reject, in one of the ways real lists get them wrong."""
    return rng.choice([
        f"{local}@@{domain}",
        f"{local}.{domain}",
        f"{local}@{domain.split('.')[0]}",
        f"{local} {local}@{domain}",
        f"{local}@{domain}; {local}",  # two addresses in a cell are read as such; one and a word are not
        f".{local}@{domain}",
        f"{local}.@{domain}",
        f"{local}@{domain}..",
        "",
        "n/a",
    ])  # fmt: skip


def generate(path: Path, count: int, seed: int = SEED) -> Generated:
    """Write `count` data rows to `path`, one at a time (memory does not grow with `count`)."""
    rng = random.Random(seed)
    domains = _domains(rng)
    stats = Generated(domains=sum(len(ds) for kinds in domains.values() for ds in kinds.values()))
    country_weights = [3 if c[0] in ("DE", "FR", "IT", "ES", "PL", "GB", "UA") else 1 for c in COUNTRIES]
    kind_weights = [k[0] for k in KINDS]
    recent: deque[list[str]] = deque(maxlen=RECENT)
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for serial in range(count):
            stats.rows += 1
            draw = rng.random()
            if recent and draw < DUPLICATE_SHARE:
                # The same person again: an exact copy, or the address in other case with other tags.
                row = list(rng.choice(recent))
                if rng.random() < 0.3 and row[0].isascii() and "<" not in row[0] and ":" not in row[0]:
                    row[0] = row[0].upper() if rng.random() < 0.5 else row[0].capitalize()
                    row[11] = rng.choice(TAGS)
                writer.writerow(row)
                stats.duplicates += 1
                continue
            invalid = draw < DUPLICATE_SHARE + INVALID_SHARE
            code, name, lang, tz, _parl, _tld, script = rng.choices(COUNTRIES, country_weights)[0]
            _share, roles, positions, where = rng.choices(KINDS, kind_weights)[0]
            if rng.random() < 0.6:
                script = "latin"  # most people anywhere have Latin-script names in a contact list
            firsts, lasts = NAMES[script]
            first, first_ascii, gender = rng.choice(firsts)
            last, last_ascii = rng.choice(lasts)
            domain = rng.choice(domains["*"][where] if where in ("europarl", "mail") else domains[code][where])
            local = _plain_local(rng, first_ascii, last_ascii, serial)
            if invalid:
                email = _invalid_address(rng, local, domain)
            else:
                shape = rng.random()
                if script == "cyrillic" and shape < 0.05:
                    email = f"{first.lower()}.{serial:x}@почта.{domain}"  # internationalized address
                elif shape < 0.005:
                    email = f"mailto:{local}@{domain}"
                elif shape < 0.01:
                    email = f"{first_ascii.title()} {last_ascii.title()} <{local}@{domain}>"
                elif shape < 0.03:
                    email = f"{local}@{domain.upper()}"
                else:
                    email = f"{local}@{domain}"
            honorific = rng.choice(HONORIFICS[gender])
            row = [
                email,
                first,
                last,
                honorific,
                gender if rng.random() < 0.5 else "",
                rng.choice(positions),
                rng.choice(roles),
                f"{where.title()} {name}" if where != "mail" else "",
                code if rng.random() < 0.6 else name,
                lang if rng.random() < 0.9 else "",
                tz if rng.random() < 0.7 else "",
                rng.choice(TAGS),
                rng.choice(PARTIES) if where in ("parl", "europarl") else "",
            ]
            writer.writerow(row)
            if invalid:
                stats.invalid += 1
            else:
                stats.valid += 1
                stats.non_latin += script != "latin"
                recent.append(row)
    stats.bytes = path.stat().st_size
    return stats


def child_env() -> dict[str, str]:
    """This environment without OUTREACH_* variables: a command run in it uses its workspace's settings alone."""
    return {key: value for key, value in os.environ.items() if not key.startswith("OUTREACH_")}


def _outreach() -> Path:
    return Path(sys.executable).parent / "outreach"


def _peak_mb(maxrss: int) -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


@dataclass
class Timed:
    exit_code: int
    seconds: float
    peak_rss_mb: float  # the largest single process: the command or a process it waited for (exact, os.wait4)
    peak_tree_mb: float | None  # the command and all its descendants together (sampled), None if not measurable
    stdout: str
    stderr: str


def _descendants(pid: int) -> list[int]:
    """The process and all its descendants, from /proc/PID/task/TID/children (Linux)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as file:
                    pending.extend(int(child) for child in file.read().split())
        except OSError:
            continue
    return found


def _memory_kib(pid: int) -> int:
    """A process's proportional set size (shared pages split among their users), or its RSS, in KiB."""
    for path, label in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path) as file:
                for line in file:
                    if line.startswith(label):
                        return int(line.split()[1])
        except (OSError, ValueError):
            continue
    return 0


class _TreeSampler(threading.Thread):
    """Samples the memory of a process and its descendants together, every SAMPLE_EVERY seconds."""

    SAMPLE_EVERY = 0.1

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self.done = threading.Event()
        self.usable = Path(f"/proc/{pid}/task/{pid}/children").exists()

    def run(self) -> None:
        while self.usable and not self.done.is_set():
            total = sum(_memory_kib(pid) for pid in _descendants(self.pid))
            if not self.done.is_set():  # once the command is reaped its pid may name another process
                self.peak_kib = max(self.peak_kib, total)
            self.done.wait(self.SAMPLE_EVERY)


def run_timed(args: list[str], cwd: Path, scratch: Path) -> Timed:
    """Run a command as a user would, timing it from start to exit and reading its peak memory.

    os.wait4 gives the exact peak RSS of the largest single process (the command, or a process it started and
    waited for). A command that reads in a second process has both alive at once, so the memory of the whole
    process tree is also sampled (sum of PSS, every 0.1 s).
    """
    out_path, err_path = scratch / "import.stdout", scratch / "import.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=child_env())
        sampler = _TreeSampler(process.pid)
        sampler.start()
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    largest = _peak_mb(usage.ru_maxrss)
    return Timed(
        process.returncode,
        seconds,
        largest,
        max(sampler.peak_kib / 1024, largest) if sampler.usable else None,
        out_path.read_text(encoding="utf-8", errors="replace"),
        err_path.read_text(encoding="utf-8", errors="replace"),
    )


def baseline(path: Path) -> dict[str, float | int]:
    """Read the CSV with the csv module and check each address with email-validator: no database."""
    from email_validator import EmailNotValidError, validate_email

    valid = invalid = 0
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.reader(file)
        next(reader)
        for row in reader:
            try:
                validate_email(row[0], check_deliverability=False)
                valid += 1
            except EmailNotValidError:
                invalid += 1
    seconds = time.perf_counter() - started
    rows = valid + invalid
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds, "valid": valid, "invalid": invalid}


OUTCOMES = ("imported", "updated", "unchanged", "merged", "suppressed", "rejected", "blank")


def check(summary: dict[str, object], generated: Generated) -> tuple[bool, list[str]]:
    """Does the command's summary account for every row generated, and for each as expected?"""
    counts = {name: int(summary.get(name, 0) or 0) for name in OUTCOMES}  # type: ignore[call-overload]
    total = sum(counts.values())
    expected = {
        "imported": generated.valid,
        "merged": generated.duplicates,
        "rejected": generated.invalid,
    }
    lines = [
        " + ".join(f"{name} {counts[name]:,}" for name in OUTCOMES)
        + f" = {total:,}; rows generated {generated.rows:,}: "
        + ("OK" if total == generated.rows else "MISMATCH")
    ]
    ok = total == generated.rows
    for name, want in expected.items():
        if counts[name] != want:
            ok = False
            lines.append(f"{name}: {counts[name]:,}, expected {want:,}")
    return ok, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="contacts to generate (default 100,000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (CSV, workspace, output)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    options = parser.parse_args()
    if options.rows < 1:
        parser.error("--rows must be at least 1")

    def say(text: str) -> None:
        if not options.json:
            print(text, flush=True)

    scratch = Path(tempfile.mkdtemp(prefix="outreach-bench-import-"))
    try:
        source = scratch / "contacts.csv"
        started = time.perf_counter()
        generated = generate(source, options.rows)
        say(
            f"generated {source} in {time.perf_counter() - started:.1f} s: {generated.rows:,} rows "
            f"({generated.invalid:,} invalid addresses, {generated.duplicates:,} duplicate rows, "
            f"{generated.non_latin:,} non-Latin names, {generated.domains} domains), "
            f"{generated.bytes / 1e6:.1f} MB"
        )
        workspace = scratch / "ws"
        subprocess.run(
            [str(_outreach()), "init", str(workspace), "--json"],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=child_env(),
        )  # fmt: skip
        command = [str(_outreach()), "contacts", "import", str(source), "--json"]
        say(f"running: outreach contacts import {source.name} --json  (cwd {workspace})")
        timed = run_timed(command, workspace, scratch)
        summary: dict[str, object] = {}
        if timed.exit_code == 0:
            with contextlib.suppress(json.JSONDecodeError):
                summary = json.loads(timed.stdout)
        ok, lines = check(summary, generated) if summary else (False, ["no JSON summary on stdout"])
        ok = ok and timed.exit_code == 0
        base = baseline(source)
        result = {
            "benchmark": "contacts import",
            "rows": generated.rows,
            "seconds": round(timed.seconds, 3),
            "rows_per_second": round(generated.rows / timed.seconds),
            "peak_rss_mb": round(timed.peak_rss_mb, 1),
            "peak_tree_mb": None if timed.peak_tree_mb is None else round(timed.peak_tree_mb, 1),
            "exit_code": timed.exit_code,
            "check_ok": ok,
            "summary": {name: summary.get(name) for name in OUTCOMES} if summary else None,
            "generated": asdict(generated),
            "baseline": {
                "what": "csv + email-validator only, no database",
                "seconds": round(float(base["seconds"]), 3),
                "rows_per_second": round(float(base["rows_per_second"])),
            },
            "python": sys.version.split()[0],
            "folder": str(scratch) if options.keep else None,
        }
        if options.json:
            print(json.dumps(result))
        else:
            print(f"exit code:   {timed.exit_code}")
            print("check:       " + ("OK" if ok else "FAILED") + " - " + lines[0])
            for line in lines[1:]:
                print(f"             {line}")
            if timed.exit_code != 0:
                print(timed.stderr.strip()[-2000:])
            print(f"rows:        {generated.rows:,}")
            print(f"seconds:     {timed.seconds:.2f}")
            print(f"rows/s:      {generated.rows / timed.seconds:,.0f}")
            print(f"peak RSS:    {timed.peak_rss_mb:.1f} MB (largest single process, from os.wait4)")
            if timed.peak_tree_mb is not None:
                print(f"peak memory: {timed.peak_tree_mb:.1f} MB (the command and its child processes together)")
            print(
                f"baseline: csv + email-validator only, no database: {base['seconds']:.2f} s, "
                f"{base['rows_per_second']:,.0f} rows/s"
            )
            if options.keep:
                print(f"kept:        {scratch}")
        return 0 if ok else 1
    finally:
        if not options.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
