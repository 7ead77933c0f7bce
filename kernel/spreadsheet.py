"""Cells of a CSV that staff open in a spreadsheet: a text starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is a formula there (``=HYPERLINK(...)`` becomes a link, ``=cmd|...``
worse), so every CSV we write quotes it with a leading apostrophe, which spreadsheets show as text
and do not display. Used by the review list's export (``submissions.results.export``) and the catalogue
export (``implants.catalog_io``), whose import takes the apostrophe off again (``unquote``)."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """``value`` as a CSV cell that a spreadsheet will not run."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def unquote(value: str) -> str:
    """A cell written by ``safe_cell`` back to what it was."""
    if value[:1] == "'" and value[1:2] in FORMULA_STARTS:
        return value[1:]
    return value
