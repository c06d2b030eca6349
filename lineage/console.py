"""Untrusted text on a terminal: the one place names are made safe to print.

Dataset, job and contract names come from events and documents anyone can send.  Printed
raw they can (a) break or forge `rich` markup (``[/]`` raises ``MarkupError``,
``[bold red]x[/bold red]`` is rendered as style), and (b) drive the terminal itself: ANSI
escape sequences recolour or rewrite the screen, a newline forges an extra output line, and
bidirectional overrides reorder what is shown.

* :func:`plain` replaces every control character (C0, DEL, C1, and the Unicode bidi
  controls) with a visible ``\\xNN`` / ``\\uNNNN`` escape, so the name stays recognisable and
  two different names never print the same.  Use it for ``typer.echo`` output.
* :func:`plain_lines` does the same for a multi-line text built by us (a decision's rendering),
  keeping its own line breaks.
* :func:`safe` is :func:`plain` plus :func:`rich.markup.escape`.  Use it for every value put
  into a string that `rich` renders as markup (``Console.print``, ``Tree`` labels, ``Table``
  cells and titles).
"""

from __future__ import annotations

import re

# C0 controls (tab and newline included: either can forge layout), DEL and C1 controls, plus
# the bidi embedding/override/isolate controls and the line/paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def plain(text: object) -> str:
    """``text`` with every control character shown as an escape instead of acting on the terminal."""
    return _CONTROL.sub(lambda m: _escape(m.group()), str(text))


def plain_lines(text: str) -> str:
    """:func:`plain` applied line by line, keeping the text's own newlines."""
    return "\n".join(plain(line) for line in str(text).split("\n"))


def safe(text: object) -> str:
    """``text`` ready to embed in `rich` markup: controls escaped as by :func:`plain`, and
    square brackets escaped so they print literally."""
    from rich.markup import escape

    return escape(plain(text))
