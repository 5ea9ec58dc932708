"""Text that came from people, made safe for terminals and spreadsheets on its way out.

- Terminal escapes: a C0 or C1 control character or DEL (ESC starts a terminal command) and
  the Unicode bidirectional controls (which reorder what a reader sees) are written as visible
  escapes such as ``\\x1b``, so the output shows what was typed and runs nothing.
- Spreadsheet formulas: a CSV cell starting with ``=``, ``+``, ``-`` or ``@`` is run as a formula
  by Excel, LibreOffice and Google Sheets; such a cell is prefixed with ``'`` (OWASP's advice for
  CSV injection). A leading tab or carriage return, also formula starters, is escaped already.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    if ch in _BIDI:
        return f"\\u{code:04x}"
    return ch


def printable(value: str) -> str:
    """``value`` with every control character written as a visible escape."""
    if value.isprintable():  # fast path: no Cc/Cf/Zl/Zp/Zs-other-than-space characters
        return value
    return "".join(_escape(ch) for ch in value)


def csv_cell(value: str) -> str:
    """A cell safe in a terminal and in a spreadsheet, showing what was typed."""
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    return printable(value)
