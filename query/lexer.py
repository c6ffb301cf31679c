"""Splits a query expression into tokens that remember their character offset.

Hand-written (with `re` for each token) because error messages must point at the exact
character, and the token set is a dozen regular expressions: a lexer library would add a
dependency without saving code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from jointspace.errors import QueryError

TokenKind = Literal["word", "number", "phrase", "image", "filter", "+", "-", "*", "(", ")", "end"]

FILTER_NAMES = ("city", "tag", "source", "after", "before")

_WORD = re.compile(r"\w+(?:['’.]\w+)*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?\Z")
_HASHTAG = re.compile(r"#(\w+)")
# `[img:42]` (the pinned form) and `[IMG_42]` (the original demo's form); ids are any run of
# characters other than brackets and whitespace.
_IMAGE = re.compile(r"\[\s*(?:img\s*:|img_)\s*([^\]\s\[]*)\s*\]", re.IGNORECASE)
_FILTER_NAME = re.compile(r"(\w+):")
_BARE_VALUE = re.compile(r"[^\s,()\"\[\]]+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class FilterValue:
    text: str
    position: int


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    position: int
    values: tuple[FilterValue, ...] = ()


def _read_quoted(expression: str, start: int) -> tuple[str, int]:
    """The string inside double quotes at `start` (with `\\"` and `\\\\` escapes) and the end offset."""
    chars: list[str] = []
    index = start + 1
    while index < len(expression):
        char = expression[index]
        if char == "\\" and index + 1 < len(expression) and expression[index + 1] in '"\\':
            chars.append(expression[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(chars), index + 1
        chars.append(char)
        index += 1
    raise QueryError("unterminated quoted phrase: add the closing \"", start, expression)


def _read_filter_values(expression: str, start: int, name: str) -> tuple[tuple[FilterValue, ...], int]:
    values: list[FilterValue] = []
    index = start
    while True:
        if index < len(expression) and expression[index] == '"':
            text, end = _read_quoted(expression, index)
        else:
            match = _BARE_VALUE.match(expression, index)
            if not match:
                raise QueryError(f"'{name}:' needs a value, e.g. {name}:{FILTER_EXAMPLES[name]}", index, expression)
            text, end = match.group(), match.end()
        if not text.strip():
            raise QueryError(f"'{name}:' needs a non-empty value", index, expression)
        values.append(FilterValue(text, index))
        index = end
        if index < len(expression) and expression[index] == ",":
            index += 1
            continue
        return tuple(values), index


FILTER_EXAMPLES = {  # shown when a filter is given without a value (here and as a parameter)
    "city": "london,sydney",
    "tag": "beach",
    "source": "instagram",
    "after": "2018-01-01",
    "before": "2019-06-30",
}


def tokenize(expression: str) -> list[Token]:
    """Tokens of `expression`, ending with an `end` token. Raises QueryError at a bad character."""
    tokens: list[Token] = []
    index = 0
    length = len(expression)
    while index < length:
        char = expression[index]
        space = _SPACE.match(expression, index)
        if space:
            index = space.end()
            continue
        if char in "+-*()":
            tokens.append(Token(char, char, index))  # type: ignore[arg-type]  # one of the Literal's, as tested above
            index += 1
            continue
        if char == '"':
            text, end = _read_quoted(expression, index)
            tokens.append(Token("phrase", text, index))
            index = end
            continue
        if char == "[":
            match = _IMAGE.match(expression, index)
            if not match:
                raise QueryError("an image reference looks like [img:42] or [IMG_42]", index, expression)
            if not match.group(1):
                raise QueryError("the image reference has no id: write [img:42]", index, expression)
            tokens.append(Token("image", match.group(1), index))
            index = match.end()
            continue
        if char == "#":
            match = _HASHTAG.match(expression, index)
            if not match:
                raise QueryError("a hashtag needs letters or digits after '#'", index, expression)
            tokens.append(Token("word", match.group(1).lower(), index))
            index = match.end()
            continue
        name = _FILTER_NAME.match(expression, index)
        if name:
            key = name.group(1).lower()
            if key not in FILTER_NAMES:
                raise QueryError(
                    f"unknown filter '{name.group(1)}:'; filters are " + ", ".join(f"{n}:" for n in FILTER_NAMES),
                    index,
                    expression,
                )
            values, end = _read_filter_values(expression, name.end(), key)
            tokens.append(Token("filter", key, index, values))
            index = end
            continue
        word = _WORD.match(expression, index)
        if word:
            text = word.group()
            kind: TokenKind = "number" if _NUMBER.match(text) else "word"
            tokens.append(Token(kind, text if kind == "number" else text.lower(), index))
            index = word.end()
            continue
        raise QueryError(f"unexpected character {char!r}", index, expression)
    tokens.append(Token("end", "", length))
    return tokens
