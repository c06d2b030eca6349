"""The canonical form of an event, and the limits every stored value must respect.

Contract:

* :func:`canonical` returns the RFC 8785 (JSON Canonicalization Scheme) bytes of a decoded
  JSON value, or raises :class:`~lineage.errors.InvalidEvent` naming the first value that
  has no canonical form or that the store cannot hold (see below).  Two values that are the
  same JSON data -- whatever their key order, whitespace, ``1`` or ``1.0`` -- give the same
  bytes.  The maintained ``rfc8785`` package is the reference; a fast path (msgspec's sorted
  encoder) is taken only where its output is provably the same bytes, and a property test
  holds the two together.
* Refused anywhere in an event, each with the JSON path of the value at fault:
  ``\\u0000`` in any string or key (PostgreSQL's ``text`` and ``jsonb`` cannot hold it), lone
  UTF-16 surrogates (not Unicode text), numbers that are not finite (``1e400``), integers
  beyond +-(2**53 - 1) (RFC 8785 numbers are IEEE doubles; send bigger ones as strings),
  and nesting deeper than :data:`MAX_DEPTH` levels.
* :func:`too_deep` answers for raw JSON bytes, cheaply, before anything decodes them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
import rfc8785

from lineage.errors import FieldProblem, InvalidEvent

#: Deepest nesting of arrays and objects accepted in one event.  The deepest facet of the
#: spec (column lineage) needs about 8; PostgreSQL and the decoders fail somewhere near 1,000.
MAX_DEPTH = 100
#: RFC 8785 serialises numbers as IEEE doubles: integers past this lose digits.
MAX_SAFE_INT = 2**53 - 1

_sorted = msgspec.json.Encoder(order="sorted")
# Where msgspec's sorted output could differ from RFC 8785: characters outside the BMP (the
# RFC sorts keys by UTF-16 code units, msgspec by code points; in UTF-8 their lead byte is
# F0-F4) and integers of 16 or more digits (possibly beyond the safe range).  Floats are
# detected while decoding.  Both checks run in C: a regex scan of 3 KB costs ~80 us, these ~3.
_ASTRAL = re.compile(rb"[\xf0-\xff]")
_DIGIT_RUNS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))  # digits -> "0", rest -> " "
_SIXTEEN_DIGITS = b"0" * 16


def _fast_path_exact(out: bytes) -> bool:
    """Is msgspec's sorted encoding ``out`` (of a float-free value) RFC 8785's bytes too?"""
    if not out.isascii() and _ASTRAL.search(out) is not None:
        return False
    return _SIXTEEN_DIGITS not in out.translate(_DIGIT_RUNS)
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def canonical(value: Any, *, floats: bool = True) -> bytes:
    """RFC 8785 bytes of ``value``; ``floats=False`` promises that no float occurs in it
    (the decoder saw none), which allows the fast path."""
    if not floats:
        try:
            out = _sorted.encode(value)
        except (UnicodeEncodeError, RecursionError, TypeError):
            out = b"\xff"  # not fast-path material; the slow path names the problem
        if _fast_path_exact(out):
            if b"\\u0000" in out:
                _raise_problem(value)
            return out
    elif _deeper_than(value, MAX_DEPTH):
        _raise_problem(value)
    try:
        out = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, rfc8785.IntegerDomainError, rfc8785.FloatDomainError, RecursionError, TypeError):
        _raise_problem(value)
    if b"\\u0000" in out:
        _raise_problem(value)  # raises unless the match was an escaped backslash before `u0000`
    return out


def problem_in(value: Any) -> FieldProblem | None:
    """The first value in ``value`` that the store refuses (see the module docstring), or None."""
    stack: list[tuple[Any, str, int]] = [(value, "$", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            if (reason := _text_problem(node)) is not None:
                return FieldProblem(path, reason)
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if abs(node) > MAX_SAFE_INT:
                return FieldProblem(path, "integers beyond ±(2^53 - 1) have no exact canonical form (RFC 8785); send it as a string")
        elif isinstance(node, float):
            if not math.isfinite(node):
                return FieldProblem(path, "must be a finite number (JSON numbers beyond ±1.8e308 are refused)")
        elif isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                return FieldProblem(path, f"nested more than {MAX_DEPTH} levels deep")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in reversed(list(items)):
                if isinstance(node, dict):
                    if (reason := _text_problem(key)) is not None:
                        return FieldProblem(f"{path}.{_printable(key)}", f"key {reason}")
                    stack.append((child, f"{path}.{_printable(key)}", depth + 1))
                else:
                    stack.append((child, f"{path}[{key}]", depth + 1))
        else:
            return FieldProblem(path, f"`{type(node).__name__}` is not a JSON value")
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain the NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be Unicode text (a lone UTF-16 surrogate such as \\ud800 is not)"
    return None


def _printable(key: str) -> str:
    """A key as it can appear in an error message (no NUL, no surrogates, bounded)."""
    safe = key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
    return safe if len(safe) <= 80 else safe[:77] + "..."


def _raise_problem(value: Any) -> None:
    problem = problem_in(value)
    if problem is not None:
        raise InvalidEvent([problem])


def _deeper_than(value: Any, limit: int) -> bool:
    """Containers only: cheaper than :func:`problem_in` when all we need is the depth."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def too_deep(body: bytes) -> bool:
    """Does the JSON text ``body`` nest arrays/objects more than :data:`MAX_DEPTH` deep?

    Counting brackets is free in C and almost always settles it (an event with fewer than
    MAX_DEPTH brackets cannot be deeper); only past that are strings skipped and depth tracked.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for m in _STRUCTURE.finditer(body):
        c = m.group()[:1]
        if c in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif c in (b"]", b"}"):
            depth -= 1
    return False
