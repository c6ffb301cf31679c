"""The parsed form of a query expression, and how to print it back as text.

Nodes compare by meaning only (positions are ignored), so `parse(to_text(parse(s)))` equals
`parse(s)` and the property tests can check the round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

TermKind = Literal["word", "phrase", "image"]


@dataclass(frozen=True, slots=True)
class Term:
    """A leaf: a vocabulary word (hashtags become words), a quoted phrase, or an indexed image id."""

    kind: TermKind
    text: str
    position: int = field(default=0, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        """Identity used to merge repeated terms (`park+park` is one term of weight 2)."""
        return (self.kind, self.text)


@dataclass(frozen=True, slots=True)
class Scaled:
    """An explicit weight on a node: `2*park`, `0.5*(beach+sun)`. Weights are finite and >= 0."""

    weight: float
    node: Node
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Sum:
    """Signed parts added left to right; a sign is +1 or -1."""

    parts: tuple[tuple[int, Node], ...]
    position: int = field(default=0, compare=False)


Node = Term | Scaled | Sum


def format_number(value: float) -> str:
    """Shortest positional decimal that parses back to the same float (never `1e-05`)."""
    return np.format_float_positional(value, trim="-")


def quote(text: str) -> str:
    """A double-quoted string with `\\` and `"` escaped, as the lexer reads it back."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_text(node: Node | None) -> str:
    """Canonical text for a node: explicit `+`/`-`, `[img:ID]` references, minimal parentheses."""
    if node is None:
        return ""
    if isinstance(node, Term):
        if node.kind == "word":
            return node.text
        if node.kind == "phrase":
            return quote(node.text)
        return f"[img:{node.text}]"
    if isinstance(node, Scaled):
        inner = to_text(node.node)
        if not isinstance(node.node, Term):
            inner = f"({inner})"
        return f"{format_number(node.weight)}*{inner}"
    pieces: list[str] = []
    for index, (sign, part) in enumerate(node.parts):
        text = to_text(part)
        if isinstance(part, Sum):
            text = f"({text})"
        if index == 0:
            pieces.append(text if sign > 0 else f"-{text}")
        else:
            pieces.append(f"{'+' if sign > 0 else '-'} {text}")
    return " ".join(pieces)
