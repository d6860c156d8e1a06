"""Kubernetes label selectors: parsing and matching, with the grammar of ``k8s.io/apimachinery/labels``.

    selector    := requirement ("," requirement)*
    requirement := key | "!" key
                 | key ("=" | "==" | "!=") value
                 | key ("in" | "notin") "(" value ("," value)* ")"
                 | key (">" | "<") integer

Used by the simulated API server (``labelSelector``), by fleet's own commands (``--select`` over an
inventory) and by the operations that list objects. A syntax error is a ``SelectorError`` that says
where in the text it is and what was expected. The rules of a label key and value
(``valid_label_key``, ``valid_label_value``) are those of ``k8s.io/apimachinery/pkg/util/validation``,
for the labels an inventory gives its clusters too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from fleet.errors import InputError

Operator = Literal["exists", "!", "=", "!=", "in", "notin", ">", "<"]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")
_TOKEN_RE = re.compile(r"\s*(==|!=|=|!|\(|\)|,|<|>|[^\s=!(),<>]+)")
#: What a valid label key and value are, in words (for error messages).
LABEL_KEY_RULE = (
    "an optional DNS prefix and '/', then up to 63 characters: letters, digits, '-', '_', '.', starting and "
    "ending with a letter or digit"
)
LABEL_VALUE_RULE = "up to 63 characters: letters, digits, '-', '_', '.', starting and ending with a letter or digit"


def valid_label_key(key: str) -> bool:
    """Whether ``key`` is a Kubernetes label key (a qualified name: ``[prefix/]name``)."""
    return bool(_KEY_RE.fullmatch(key))  # not match: `$` would let a final line break through


def valid_label_value(value: str) -> bool:
    """Whether ``value`` is a Kubernetes label value (empty, or a name of at most 63 characters)."""
    return bool(_VALUE_RE.fullmatch(value))


class SelectorError(InputError):
    """A label selector that does not parse. ``position`` is the 0-based offset in the text."""

    def __init__(self, text: str, position: int, expected: str) -> None:
        self.text = text
        self.position = position
        self.expected = expected
        super().__init__(f"invalid label selector {text!r} at character {position + 1}: {expected}")

    def pointed(self) -> str:
        """The problem, then the text once with a caret under where it is (for a flag's error)."""
        pointer = f"  {self.text}\n  {' ' * self.position}^"
        return f"invalid label selector at character {self.position + 1}: {self.expected}\n{pointer}"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "exists":
                return present
            case "!":
                return not present
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case ">" | "<":
                if value is None:
                    return False
                try:
                    number = int(value)
                except ValueError:
                    return False
                bound = int(self.values[0])
                return number > bound if self.operator == ">" else number < bound

    def __str__(self) -> str:
        match self.operator:
            case "exists":
                return self.key
            case "!":
                return f"!{self.key}"
            case "in" | "notin":
                return f"{self.key} {self.operator} ({','.join(self.values)})"
            case _:
                return f"{self.key}{self.operator}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """All requirements must hold (an empty selector matches everything)."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _tokenize(text: str) -> list[tuple[str, int]]:
    tokens: list[tuple[str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(text, pos)
        if m is None:  # pragma: no cover - the token pattern accepts any non-space character
            raise SelectorError(text, pos, "an unexpected character")
        tokens.append((m.group(1), m.start(1)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str) -> tuple[str, int]:
        tok = self.peek()
        if tok is None:
            raise SelectorError(self.text, len(self.text), f"expected {expected}, found the end")
        self.i += 1
        return tok

    def key(self) -> str:
        tok, pos = self.take("a label key")
        if not valid_label_key(tok):
            raise SelectorError(self.text, pos, f"{tok!r} is not a valid label key ({LABEL_KEY_RULE})")
        return tok

    def value(self) -> str:
        tok = self.peek()
        if tok is None or tok[0] in {",", ")"}:
            return ""  # an empty value is valid: `key=` selects key with value ""
        text, pos = self.take("a label value")
        if not valid_label_value(text):
            raise SelectorError(self.text, pos, f"{text!r} is not a valid label value ({LABEL_VALUE_RULE})")
        return text

    def requirement(self) -> Requirement:
        tok = self.peek()
        if tok is None:
            raise SelectorError(self.text, len(self.text), "expected a requirement, found the end")
        if tok[0] == "!":
            self.i += 1
            return Requirement(self.key(), "!")
        key = self.key()
        nxt = self.peek()
        if nxt is None or nxt[0] == ",":
            return Requirement(key, "exists")
        op, pos = self.take("an operator")
        if op in {"=", "=="}:
            return Requirement(key, "=", (self.value(),))
        if op == "!=":
            return Requirement(key, "!=", (self.value(),))
        if op in {">", "<"}:
            number, npos = self.take("an integer")
            if not re.fullmatch(r"-?\d+", number):
                raise SelectorError(self.text, npos, f"expected an integer after {op!r}, found {number!r}")
            return Requirement(key, ">" if op == ">" else "<", (number,))
        if op in {"in", "notin"}:
            paren, ppos = self.take("'('")
            if paren != "(":
                raise SelectorError(self.text, ppos, f"expected '(' after {op!r}, found {paren!r}")
            closing = self.peek()
            if closing is not None and closing[0] == ")":
                raise SelectorError(self.text, closing[1], f"expected at least one value in the {op!r} set")
            values = [self.value()]
            while True:
                sep, spos = self.take("',' or ')'")
                if sep == ")":
                    break
                if sep != ",":
                    raise SelectorError(self.text, spos, f"expected ',' or ')' in the value list, found {sep!r}")
                values.append(self.value())
            return Requirement(key, "in" if op == "in" else "notin", tuple(values))
        raise SelectorError(
            self.text, pos, f"expected one of '=', '==', '!=', 'in', 'notin', '>', '<' or ',', found {op!r}"
        )

    def selector(self) -> Selector:
        if not self.tokens:
            return Selector()
        requirements = [self.requirement()]
        while (tok := self.peek()) is not None:
            if tok[0] != ",":
                raise SelectorError(self.text, tok[1], f"expected ',' between requirements, found {tok[0]!r}")
            self.i += 1
            requirements.append(self.requirement())
        return Selector(tuple(requirements))


def parse_selector(text: str | None) -> Selector:
    """Parse a label selector; ``""`` and ``None`` select everything."""
    return _Parser(text or "").selector()


def selector_from_match_labels(labels: Mapping[str, str]) -> Selector:
    """The selector that ``matchLabels`` means."""
    return Selector(tuple(Requirement(k, "=", (v,)) for k, v in sorted(labels.items())))


def selector_from_label_selector(spec: Mapping[str, object] | None) -> Selector:
    """A ``metav1.LabelSelector`` (matchLabels + matchExpressions) as a ``Selector``."""
    if not spec:
        return Selector()
    match_labels = spec.get("matchLabels") or {}
    reqs = list(selector_from_match_labels(match_labels).requirements) if isinstance(match_labels, Mapping) else []
    expressions = spec.get("matchExpressions") or []
    ops: dict[str, Operator] = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    if isinstance(expressions, list):
        for expr in expressions:
            if isinstance(expr, Mapping) and expr.get("operator") in ops:
                values = tuple(str(v) for v in expr.get("values") or ())
                reqs.append(Requirement(str(expr["key"]), ops[str(expr["operator"])], values))
    return Selector(tuple(reqs))
