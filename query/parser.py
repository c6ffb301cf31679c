"""The query language: grammar, limits and the recursive-descent parser.

Grammar (EBNF; whitespace separates tokens and is otherwise ignored)::

    query    = { filter | [ "+" | "-" ] product } ;     (* two products side by side add: "red car" = red + car *)
    sum      = [ "+" | "-" ] product { [ "+" | "-" ] product } ;
    product  = [ NUMBER "*" ] atom ;                    (* an explicit weight: 2*park, 0.5*[img:7] *)
    atom     = WORD | HASHTAG | PHRASE | IMAGE | NUMBER | "(" sum ")" ;
    filter   = NAME ":" value { "," value } ;           (* NAME: city | tag | source | after | before *)
    value    = BARE | PHRASE ;

    WORD     = letters, digits or "_" (inner ' or . allowed), lower-cased: park, don't
    HASHTAG  = "#" WORD                                  (* a word: #beach = beach *)
    PHRASE   = '"' text '"'  with \\" and \\\\ escapes    (* embedded as a caption *)
    IMAGE    = "[img:" ID "]" | "[IMG_" ID "]"          (* an indexed post's stored vector *)
    NUMBER   = digits [ "." digits ]                     (* a number not followed by "*" is a word *)

Operators apply left to right; a weight multiplies everything inside its parentheses
(`2*(beach+sun)-car` = 2·beach + 2·sun - car); a term repeated adds up (`park+park` = 2·park).
Filters may stand anywhere outside parentheses and all apply together.

Hand-written recursive descent rather than a parser generator: errors must point at the exact
character with a sentence a person understands, limits (length, terms, nesting) must be
enforced while parsing so hostile input stays cheap, and the grammar is small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from jointspace.errors import QueryError
from jointspace.records import Filters
from jointspace.settings import Settings

from .filters import filters_from_tokens, filters_to_text
from .lexer import Token, tokenize
from .syntax import Node, Scaled, Sum, Term, to_text


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """What one expression may hold; from Settings so an operator can tune them."""

    max_chars: int = 1_000
    max_terms: int = 64
    max_weight: float = 100.0
    max_nesting: int = 16

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryLimits:
        return cls(
            settings.query_max_chars, settings.query_max_terms, settings.query_max_weight, settings.query_max_nesting
        )


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """An expression (None when only filters were given) and the filters written inline."""

    expression: Node | None
    filters: Filters = field(default_factory=Filters)
    text: str = field(default="", compare=False)

    def to_text(self) -> str:
        """Canonical text; parsing it gives an equal ParsedQuery."""
        return " ".join(p for p in (to_text(self.expression), filters_to_text(self.filters)) if p)

    def terms(self) -> list[Term]:
        """Every leaf in order of appearance (repeats included)."""
        found: list[Term] = []

        def walk(node: Node) -> None:
            if isinstance(node, Term):
                found.append(node)
            elif isinstance(node, Scaled):
                walk(node.node)
            else:
                for _, part in node.parts:
                    walk(part)

        if self.expression is not None:
            walk(self.expression)
        return found


_ATOM_START = {"word", "number", "phrase", "image", "("}


_TERM_END = {"word", "phrase", "image", ")"}  # kinds of token that can end a term


class _Parser:
    def __init__(self, expression: str, limits: QueryLimits) -> None:
        self.expression = expression
        self.limits = limits
        self.tokens = tokenize(expression)
        self.index = 0
        self.term_count = 0
        self.filter_tokens: list[Token] = []

    # -- helpers -----------------------------------------------------------------------------
    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def error(self, message: str, position: int | None = None) -> QueryError:
        return QueryError(message, self.token.position if position is None else position, self.expression)

    # -- grammar -----------------------------------------------------------------------------
    def query(self) -> ParsedQuery:
        parts: list[tuple[int, Node]] = []
        start = self.token.position
        while self.token.kind != "end":
            if self.token.kind == "filter":
                self.filter_tokens.append(self.advance())
                continue
            if self.token.kind == ")":
                raise self.error("')' without a matching '('")
            parts.append(self.signed_product(depth=0))
        filters = filters_from_tokens(self.filter_tokens, self.expression)
        return ParsedQuery(_simplify(parts, start), filters, self.expression)

    def sum(self, depth: int) -> Node:
        start = self.token.position
        parts = [self.signed_product(depth)]
        while self.token.kind in {"+", "-"} | _ATOM_START:
            parts.append(self.signed_product(depth))
        if self.token.kind == "filter":
            raise self.error("filters go outside parentheses")
        node = _simplify(parts, start)
        assert node is not None
        return node

    def signed_product(self, depth: int) -> tuple[int, Node]:
        sign = 1
        if self.token.kind in ("+", "-"):
            sign = 1 if self.advance().kind == "+" else -1
        if self.token.kind == "*" and self.index > 0 and self.tokens[self.index - 1].kind in _TERM_END:
            # `dog*2`, `1e3*dog`: the grammar's own words ("expected a word") would not say what is wrong.
            before = self.tokens[self.index - 1]
            what = f"'{before.text}' is not a weight" if before.kind == "word" else "'*' must follow a weight"
            raise self.error(f"{what}: a weight is a plain number before its term, as in 2*dog or 0.5*(sun+sea)")
        if self.token.kind not in _ATOM_START:
            raise self.error(self._expected("a word, \"phrase\", [img:ID], number or '('"))
        return sign, self.product(depth)

    def product(self, depth: int) -> Node:
        token = self.token
        if token.kind == "number" and self.tokens[self.index + 1].kind == "*":
            self.advance()
            self.advance()
            weight = float(token.text)
            if not math.isfinite(weight) or weight > self.limits.max_weight:
                raise self.error(
                    f"weight {token.text} is above the limit of {self.limits.max_weight:g}", token.position
                )
            if self.token.kind not in _ATOM_START:
                raise self.error(self._expected(f"a term after '{token.text}*'"))
            return Scaled(weight, self.atom(depth), token.position)
        return self.atom(depth)

    def atom(self, depth: int) -> Node:
        token = self.token
        if token.kind == "(":
            if depth + 1 > self.limits.max_nesting:
                raise self.error(f"parentheses nest deeper than {self.limits.max_nesting}")
            self.advance()
            if self.token.kind == ")":
                raise self.error("empty parentheses: put a term inside")
            node = self.sum(depth + 1)
            closing = self.token  # a fresh name: mypy would keep the narrowing above across the call
            if closing.kind != ")":
                raise self.error(self._expected(f"')' to close the '(' at character {token.position}"))
            self.advance()
            return node
        self.advance()
        self.term_count += 1
        if self.term_count > self.limits.max_terms:
            raise self.error(f"more than {self.limits.max_terms} terms", token.position)
        if token.kind in ("word", "number"):
            return Term("word", token.text, token.position)
        if token.kind == "phrase":
            if not token.text.strip():
                raise self.error("empty quoted phrase", token.position)
            return Term("phrase", token.text, token.position)
        return Term("image", token.text, token.position)

    def _expected(self, what: str) -> str:
        found = "the end of the query" if self.token.kind == "end" else f"'{self.token.text or self.token.kind}'"
        return f"expected {what}, found {found}"


def _simplify(parts: list[tuple[int, Node]], position: int) -> Node | None:
    """A single positive part stands for itself, so `(park)` and `park` are the same query."""
    if not parts:
        return None
    if len(parts) == 1 and parts[0][0] > 0:
        return parts[0][1]
    return Sum(tuple(parts), position)


def parse(expression: str, limits: QueryLimits | None = None) -> ParsedQuery:
    """Parse `expression`. Raises QueryError (with the character offset) and nothing else."""
    limits = limits or QueryLimits()
    if not isinstance(expression, str):
        raise QueryError("the query must be text")
    if len(expression) > limits.max_chars:
        raise QueryError(
            f"the query is {len(expression)} characters long; the limit is {limits.max_chars}",
            limits.max_chars,
            expression[: limits.max_chars + 1],
        )
    return _Parser(expression, limits).query()
