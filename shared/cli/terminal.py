"""Make attacker-controlled text safe to write to a terminal.

User principal names, inbox rule names, user agents, file names and alert summaries come from the
audited tenant: a UPN such as ``megan\\x1b]8;;https://evil.example\\x07@contoso.com`` or a rule named
``\\x1b[2J\\x1b[H`` would otherwise clear the analyst's screen, forge lines, set the window title or
plant a hyperlink. Every human-facing output of the CLI (tables, one-line messages, errors on stderr)
passes its attacker-reachable text through :func:`safe`; JSON output needs nothing (orjson escapes
every control character as ``\\u00XX``).

What :func:`safe` removes, in this order:

1. Escape sequences, whole: CSI (``ESC [`` or U+009B, parameters, final byte), the string commands
   OSC, DCS, SOS, PM and APC (``ESC ]`` / ``ESC P`` / ``ESC X`` / ``ESC ^`` / ``ESC _`` or their C1
   forms, up to BEL, ``ESC \\`` or U+009C, or to the end of the text when unterminated) and the
   other two- and three-byte ``ESC`` sequences.
2. Every remaining control character: C0 (U+0000-U+001F), DEL (U+007F) and C1 (U+0080-U+009F).
   Tab and newline become a space in one-line text (a table cell, a message) and are kept only when
   the caller asks for ``multiline``; carriage return is always removed (it rewrites the line).
3. The Unicode bidirectional controls (U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), which reorder
   what a terminal shows ("Trojan Source").
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["safe"]

_STRING_COMMAND: Final = re.compile(r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)", re.DOTALL)
_CSI: Final = re.compile(r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?")
_OTHER_ESCAPE: Final = re.compile(r"\x1b[\x20-\x2f]*[\x30-\x7e]?")
_CONTROLS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LAYOUT: Final = re.compile(r"[\t\n]")


def safe(text: object, *, multiline: bool = False) -> str:
    """``str(text)`` without escape sequences and control characters (see the module notes).

    >>> safe("megan\\x1b[31m@contoso.com\\x1b[0m")
    'megan@contoso.com'
    >>> safe("a\\tb\\nc"), safe("a\\tb\\nc", multiline=True)
    ('a b c', 'a\\tb\\nc')
    """
    out = _STRING_COMMAND.sub("", str(text))
    out = _CSI.sub("", out)
    out = _OTHER_ESCAPE.sub("", out)
    out = _CONTROLS.sub("", out)
    return out if multiline else _LAYOUT.sub(" ", out)
