"""Cells of the CSV files outreach writes, made safe to open in a spreadsheet, and read back as they were.

A spreadsheet reads a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return before one) as a
formula and runs it: `=HYPERLINK(...)` in a name, `=DDE(...)` in a custom attribute. OWASP's "CSV Injection" page
says to prefix such a cell with a single quote, which spreadsheets show as text and do not keep; phone numbers
(`+33 6 ...`) and negative numbers get one too. `contacts import` takes the quote off again, so an export reads
back exactly.
"""

from __future__ import annotations

import re

# The characters OWASP lists; a cell that starts with one is quoted.
FORMULA_STARTS = "=+-@\t\r"

# Quoted: a cell that starts with a formula character, or with quotes before one, so that a value which itself
# begins with `'=` comes back whole (`''=` is read as `'=`). Unquoted: one quote before such a start.
_NEEDS_QUOTE = re.compile(f"'*[{re.escape(FORMULA_STARTS)}]")
_QUOTED = re.compile(f"'+[{re.escape(FORMULA_STARTS)}]")
_FIRST = frozenset(f"'{FORMULA_STARTS}")  # most cells start with none of these: no pattern to match


def quote_formula(cell: str) -> str:
    """Return the cell as a spreadsheet should get it: with a leading `'` if it would start a formula."""
    if not cell or cell[0] not in _FIRST:
        return cell
    return f"'{cell}" if _NEEDS_QUOTE.match(cell) else cell


def unquote_formula(cell: str) -> str:
    """Return the value a cell written by `quote_formula` held: without the `'` it added, otherwise as it is."""
    return cell[1:] if cell[:1] == "'" and _QUOTED.match(cell) else cell
