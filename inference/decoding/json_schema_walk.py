"""JSON-schema facts the closing logic needs: alternatives, property order, minimal values.

The constrained decoder must always be able to finish the JSON it has started within the
tokens it has left. These helpers say, for a (sub)schema, which plain alternatives it stands
for (`anyOf`, `oneOf`, `$ref`, type lists flattened) and what the shortest valid value of each
is, written the way the grammar writes JSON (compact, `", "` and `": "` separators).
"""

from __future__ import annotations

import importlib
import json
import math
import re
from typing import Any

# Python's own regex parser (the `re` module's internals; no public equivalent), to make up a
# short string that matches a schema's `pattern`.
_sre: Any = importlib.import_module("re._parser")
_sre_c: Any = importlib.import_module("re._constants")

Schema = dict[str, Any]

ITEM_SEPARATOR = ", "
KEY_SEPARATOR = ": "
MAX_DEPTH = 16

# A value of each `format` llguidance enforces, for when a formatted string must be made up.
FORMAT_EXAMPLES = {
    "date": "2000-01-01",
    "time": "00:00:00Z",
    "date-time": "2000-01-01T00:00:00Z",
    "duration": "P1D",
    "email": "a@a.aa",
    "hostname": "a",
    "ipv4": "0.0.0.0",  # noqa: S104 (an example address, nothing binds to it)
    "ipv6": "::",
    "uuid": "00000000-0000-0000-0000-000000000000",
}
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


def dump(value: Any) -> str:
    """`value` as the grammar writes JSON."""
    return json.dumps(value, separators=(ITEM_SEPARATOR, KEY_SEPARATOR), ensure_ascii=False)


class SchemaSet:
    """A root schema, for resolving `$ref`s while walking its subschemas."""

    def __init__(self, root: Schema) -> None:
        self.root = root

    def _deref(self, ref: str) -> Schema:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}

    def alternatives(self, schema: Any, depth: int = 0) -> list[Schema]:
        """The plain schemas (no anyOf/oneOf/$ref/type list) that `schema` allows any of."""
        if schema is True or schema is None:
            return [{}]
        if schema is False or not isinstance(schema, dict) or depth > MAX_DEPTH:
            return []
        rest = dict(schema)
        if "$ref" in rest:
            target = self._deref(rest.pop("$ref"))
            return self.alternatives(_merge(target, rest), depth + 1)
        for key in ("anyOf", "oneOf"):
            if key in rest:
                branches = rest.pop(key)
                return [
                    alt for b in branches for alt in self.alternatives(_merge(rest, b), depth + 1)
                ]
        if "allOf" in rest:
            merged = rest
            for part in rest.pop("allOf"):
                merged = _merge(merged, part)
            return self.alternatives(merged, depth + 1)
        kind = rest.get("type")
        if isinstance(kind, list):
            return [{**rest, "type": k} for k in kind]
        return [rest]

    def minimal(self, schema: Any, depth: int = 0) -> str | None:
        """The shortest valid value of `schema` as text, or None when none is known."""
        best: str | None = None
        for alt in self.alternatives(schema, depth):
            text = self._minimal_plain(alt, depth)
            if text is not None and (best is None or len(text) < len(best)):
                best = text
        return best

    def _minimal_plain(self, alt: Schema, depth: int) -> str | None:
        if depth > MAX_DEPTH:
            return None
        if "const" in alt:
            return dump(alt["const"])
        if "enum" in alt:
            return min((dump(v) for v in alt["enum"]), key=len, default=None)
        kind = kind_of(alt)
        if kind == "null":
            return "null"
        if kind == "boolean":
            return "true"
        if kind in ("integer", "number"):
            return minimal_number(alt, integer=kind == "integer")
        if kind == "string":
            return minimal_string(alt)
        if kind == "array":
            return self._minimal_array(alt, depth)
        if kind == "object":
            return self._minimal_object(alt, depth)
        return "0"  # any JSON value

    def _minimal_array(self, alt: Schema, depth: int) -> str | None:
        items = []
        for i in range(int(alt.get("minItems", 0))):
            item = self.minimal(item_schema(alt, i), depth + 1)
            if item is None:
                return None
            items.append(item)
        return "[" + ITEM_SEPARATOR.join(items) + "]"

    def _minimal_object(self, alt: Schema, depth: int) -> str | None:
        pairs = []
        for key in required_in_order(alt):
            value = self.minimal(property_schema(alt, key), depth + 1)
            if value is None:
                return None
            pairs.append(dump(key) + KEY_SEPARATOR + value)
        return "{" + ITEM_SEPARATOR.join(pairs) + "}"


def _merge(base: Schema, extra: Any) -> Schema:
    if not isinstance(extra, dict):
        return base
    merged = {**base, **extra}
    if "properties" in base and "properties" in extra:
        merged["properties"] = {**base["properties"], **extra["properties"]}
    if "required" in base and "required" in extra:
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    return merged


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def kind_of(alt: Schema) -> str:
    """The JSON type a plain schema describes, or "any"."""
    if "const" in alt:
        return _json_kind(alt["const"])
    kind = alt.get("type")
    if isinstance(kind, str):
        return kind
    if "enum" in alt:
        kinds = {_json_kind(v) for v in alt["enum"]}
        return kinds.pop() if len(kinds) == 1 else "any"
    if {"properties", "required", "additionalProperties"} & alt.keys():
        return "object"
    if {"items", "prefixItems", "minItems", "maxItems"} & alt.keys():
        return "array"
    if {"minLength", "maxLength", "pattern", "format"} & alt.keys():
        return "string"
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & alt.keys():
        return "number"
    return "any"


def starts_kind(alt: Schema, first: str) -> bool:
    """Whether a value of `alt` can begin with the character `first`."""
    if "enum" in alt or "const" in alt:
        values = alt["enum"] if "enum" in alt else [alt["const"]]
        return any(dump(v).startswith(first) for v in values)
    kind = kind_of(alt)
    if kind == "any":
        return True
    wanted = {
        '"': ("string",),
        "{": ("object",),
        "[": ("array",),
        "t": ("boolean",),
        "f": ("boolean",),
        "n": ("null",),
    }.get(first, ("integer", "number") if first == "-" or first.isdigit() else ())
    return kind in wanted


def property_schema(alt: Schema, key: str) -> Any:
    """The schema of property `key` in object schema `alt` (False when it is not allowed)."""
    props = alt.get("properties", {})
    if key in props:
        return props[key]
    return alt.get("additionalProperties", True)


def required_in_order(alt: Schema) -> list[str]:
    """Required keys in the order the grammar emits them (the `properties` order first)."""
    required = set(alt.get("required", []))
    ordered = [k for k in alt.get("properties", {}) if k in required]
    return ordered + [k for k in alt.get("required", []) if k not in ordered]


def item_schema(alt: Schema, index: int) -> Any:
    """The schema of array item `index`."""
    prefix = alt.get("prefixItems", [])
    if index < len(prefix):
        return prefix[index]
    return alt.get("items", True)


def is_shaped(alt: Schema) -> bool:
    """Whether a string schema constrains its text by a `pattern` or an enforced `format`
    (llguidance ignores formats it does not know, as this code does)."""
    return "pattern" in alt or alt.get("format") in FORMAT_EXAMPLES


def shaped_example(alt: Schema) -> str | None:
    """A short valid value of a `pattern` or `format` string schema (None if none is known)."""
    if "pattern" in alt:
        return pattern_example(alt["pattern"])
    return FORMAT_EXAMPLES.get(alt.get("format", ""))


def minimal_string(alt: Schema) -> str | None:
    """The shortest valid string of `alt`."""
    if is_shaped(alt):
        example = shaped_example(alt)
        return None if example is None else dump(example)
    return dump("a" * int(alt.get("minLength", 0)))


def pattern_example(pattern: str) -> str | None:
    """A short string matching the (anchored) regex `pattern`, or None."""
    try:
        parsed = _sre.parse(pattern)
    except re.error:
        return None
    text = _example(list(parsed.data), 0)
    if text is None or not re.fullmatch(pattern.removeprefix("^").removesuffix("$"), text):
        return None
    return text


def _example(items: list[Any], depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return None
    out = []
    for op, arg in items:
        piece = _example_item(op, arg, depth)
        if piece is None:
            return None
        out.append(piece)
    return "".join(out)


def _example_item(op: Any, arg: Any, depth: int) -> str | None:
    c = _sre_c
    if op == c.LITERAL:
        return chr(arg)
    if op == c.NOT_LITERAL:
        return "a" if chr(arg) != "a" else "b"
    if op == c.AT:
        return ""
    if op == c.ANY:
        return "a"
    if op == c.IN:
        return _class_example(arg)
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
        low, _, sub = arg
        one = _example(list(sub), depth + 1)
        return None if one is None else one * low
    if op == c.SUBPATTERN:
        return _example(list(arg[-1]), depth + 1)
    if op == c.BRANCH:
        options = [_example(list(b), depth + 1) for b in arg[1]]
        found = [o for o in options if o is not None]
        return min(found, key=len) if found else None
    if op == c.CATEGORY:
        return _CATEGORY_EXAMPLES.get(str(arg))
    return None


_CATEGORY_EXAMPLES = {"CATEGORY_DIGIT": "0", "CATEGORY_WORD": "a", "CATEGORY_SPACE": " "}


def _class_example(members: list[Any]) -> str | None:
    c = _sre_c
    if members and members[0][0] == c.NEGATE:
        return next((ch for ch in "a0A_-" if not _class_allows(members[1:], ch)), None)
    for op, arg in members:
        if op == c.LITERAL:
            return chr(arg)
        if op == c.RANGE:
            return chr(arg[0])
        if op == c.CATEGORY:
            return _CATEGORY_EXAMPLES.get(str(arg))
    return None


def _class_allows(members: list[Any], ch: str) -> bool:
    c = _sre_c
    for op, arg in members:
        if op == c.LITERAL and chr(arg) == ch:
            return True
        if op == c.RANGE and arg[0] <= ord(ch) <= arg[1]:
            return True
        if op == c.CATEGORY and _CATEGORY_EXAMPLES.get(str(arg), "").isalnum() == ch.isalnum():
            return True
    return False


def _bounds(alt: Schema) -> tuple[float, float, bool, bool]:
    low, high = -math.inf, math.inf
    low_open = high_open = False
    if "minimum" in alt:
        low = float(alt["minimum"])
    if "exclusiveMinimum" in alt and float(alt["exclusiveMinimum"]) >= low:
        low, low_open = float(alt["exclusiveMinimum"]), True
    if "maximum" in alt:
        high = float(alt["maximum"])
    if "exclusiveMaximum" in alt and float(alt["exclusiveMaximum"]) <= high:
        high, high_open = float(alt["exclusiveMaximum"]), True
    return low, high, low_open, high_open


def number_fits(text: str, alt: Schema, *, integer: bool) -> bool:
    """Whether `text` is a complete number literal valid for `alt`."""
    if not (_INTEGER if integer else _NUMBER).fullmatch(text):
        return False
    value = float(text)
    low, high, low_open, high_open = _bounds(alt)
    if value < low or (low_open and value == low) or value > high or (high_open and value == high):
        return False
    step = alt.get("multipleOf")
    if step:
        ratio = value / float(step)
        return abs(ratio - round(ratio)) < 1e-9
    return True


def minimal_number(alt: Schema, *, integer: bool) -> str | None:
    """The shortest number literal valid for `alt`."""
    low, high, _, _ = _bounds(alt)
    step = float(alt.get("multipleOf") or 1)
    seeds = [0.0, low, high, (low + high) / 2]
    candidates: list[float] = []
    for seed in seeds:
        if math.isfinite(seed):
            base = math.floor(seed / step) * step
            candidates += [base + k * step for k in (-1, 0, 1, 2)]
    texts = [_number_text(c) for c in candidates] + [_number_text(s) for s in seeds]
    valid = [t for t in texts if t is not None and number_fits(t, alt, integer=integer)]
    return min(valid, key=len, default=None)


def _number_text(value: float) -> str | None:
    if not math.isfinite(value):
        return None
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
