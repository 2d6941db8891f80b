"""Where a partial JSON document stands against its schema, and the shortest text ending it.

`JsonCursor` reads the output of a JSON-constrained generation character by character and
keeps a stack of open values (objects, arrays, strings, numbers, literals), each with the
schema alternatives it may still belong to. `closing()` answers the budget keeper's question:
the shortest text that turns what has been written into a complete, schema-valid document
(close the string, finish the number, add the missing required properties with their minimal
values, close the brackets). The decoder checks that answer against the grammar itself.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from jsonschema import Draft202012Validator

from inference.decoding.json_schema_walk import (
    ITEM_SEPARATOR,
    KEY_SEPARATOR,
    Schema,
    SchemaSet,
    dump,
    is_shaped,
    item_schema,
    kind_of,
    number_fits,
    property_schema,
    required_in_order,
    shaped_example,
    starts_kind,
)

_NUMBER_CHARS = frozenset("0123456789+-.eE")
_NUMBER_TAIL_CHARS = "0123456789."
_LITERALS = ("true", "false", "null")
_MAX_CLOSING_STEPS = 64
# Endings tried for a `format`/`pattern` string when the example's own tail does not fit what
# was typed (time-zone offsets, e-mail domains, more digits).
_SHAPED_TAILS = (
    *("", "Z", "0", "00", ":00", "0:00", "00:00", "0Z", "00Z"),
    *("a", "aa", ".aa", "a.aa", "@a.aa", "a@a.aa"),
    *("A", "/a", "a/a"),
)
_NUMBER_TAILS_TRIED = 6


@dataclass
class _Frame:
    kind: str  # object | array | string | number | literal
    alts: list[Schema]
    start: int  # offset of the value's first character in the document
    state: str = ""  # object: start|key|colon|value|after; array: start|value|after
    keys: list[str] = field(default_factory=list)  # object: keys whose values are complete
    key: str | None = None  # object: the key whose value comes next
    count: int = 0  # array: complete items
    is_key: bool = False  # string: an object key (its alts are the object's)
    escape: str = ""  # string: an escape sequence in progress

    def clone(self) -> _Frame:
        twin = copy.copy(self)
        twin.keys = list(self.keys)
        return twin


class JsonCursor:
    """A partial JSON document and the schema alternatives each open value may still match."""

    def __init__(self, schema: Schema) -> None:
        self.schemas = SchemaSet(schema)
        self.doc = ""
        self.done = False
        self.failed = False
        self._stack: list[_Frame] = []
        self._root = self.schemas.alternatives(schema)

    def clone(self) -> JsonCursor:
        """An independent copy."""
        twin = copy.copy(self)
        twin._stack = [f.clone() for f in self._stack]
        return twin

    def feed(self, text: str) -> bool:
        """Read more of the document; False (and `failed`) when it cannot be followed."""
        for ch in text:
            if self.failed:
                return False
            self._char(ch)
            self.doc += ch
        return not self.failed

    # -- reading --------------------------------------------------------------------------------

    def _char(self, ch: str) -> None:
        if self.done:
            self.failed = True
            return
        if not self._stack:
            if not ch.isspace():
                self._open(ch, self._root)
            return
        top = self._stack[-1]
        if top.kind == "string":
            self._string_char(top, ch)
        elif top.kind == "number":
            if ch in _NUMBER_CHARS:
                return
            self._close()
            self._char(ch)
        elif top.kind == "literal":
            text = self._value_text(top) + ch
            if not any(lit.startswith(text) for lit in _LITERALS):
                self.failed = True
            elif text in _LITERALS:
                self._close(extra=ch)
        elif top.kind == "object":
            self._object_char(top, ch)
        else:
            self._array_char(top, ch)

    def _value_text(self, frame: _Frame) -> str:
        return self.doc[frame.start :]

    def _open(self, ch: str, alts: list[Schema]) -> None:
        fitting = [a for a in alts if starts_kind(a, ch)]
        if not fitting:
            self.failed = True
            return
        start = len(self.doc)
        if ch == "{":
            self._stack.append(_Frame("object", fitting, start, state="start"))
        elif ch == "[":
            self._stack.append(_Frame("array", fitting, start, state="start"))
        elif ch == '"':
            self._stack.append(_Frame("string", fitting, start))
        elif ch == "-" or ch.isdigit():
            self._stack.append(_Frame("number", fitting, start))
        elif ch in "tfn":
            self._stack.append(_Frame("literal", fitting, start))
        else:
            self.failed = True

    def _string_char(self, top: _Frame, ch: str) -> None:
        if top.escape:
            top.escape += ch
            if top.escape == "\\u" or (top.escape.startswith("\\u") and len(top.escape) < 6):
                return
            top.escape = ""
        elif ch == "\\":
            top.escape = "\\"
        elif ch == '"':
            if top.is_key:
                key = json.loads(self._value_text(top) + ch)
                self._stack.pop()
                parent = self._stack[-1]
                parent.key, parent.state = key, "colon"
            else:
                self._close(extra=ch)

    def _object_char(self, top: _Frame, ch: str) -> None:
        if ch.isspace():
            return
        if top.state in ("start", "key") and ch == '"':
            self._stack.append(_Frame("string", top.alts, len(self.doc), is_key=True))
        elif top.state in ("start", "after") and ch == "}":
            self._close(extra=ch)
        elif top.state == "colon" and ch == ":":
            top.state = "value"
        elif top.state == "after" and ch == ",":
            top.state = "key"
        elif top.state == "value":
            assert top.key is not None
            alts = [
                alt
                for obj in top.alts
                for alt in self.schemas.alternatives(property_schema(obj, top.key))
            ]
            self._open(ch, alts)
        else:
            self.failed = True

    def _array_char(self, top: _Frame, ch: str) -> None:
        if ch.isspace():
            return
        if top.state in ("start", "after") and ch == "]":
            self._close(extra=ch)
        elif top.state == "after" and ch == ",":
            top.state = "value"
        elif top.state in ("start", "value"):
            alts = [
                alt
                for arr in top.alts
                for alt in self.schemas.alternatives(item_schema(arr, top.count))
            ]
            self._open(ch, alts)
        else:
            self.failed = True

    def _close(self, extra: str = "") -> None:
        """The top value is complete (`extra`: its last character, not yet in `doc`)."""
        frame = self._stack.pop()
        if not self._stack:
            self.done = True
            return
        parent = self._stack[-1]
        if parent.kind == "array":
            parent.count += 1
            parent.state = "after"
            return
        assert parent.key is not None
        if len(parent.alts) > 1:
            parent.alts = self._still_matching(parent, parent.key, self._value_text(frame) + extra)
        parent.keys.append(parent.key)
        parent.key, parent.state = None, "after"

    def _still_matching(self, obj: _Frame, key: str, text: str) -> list[Schema]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return obj.alts
        kept = []
        for alt in obj.alts:
            sub = property_schema(alt, key)
            if sub is False:
                continue
            schema = sub if isinstance(sub, dict) else {}
            root = self.schemas.root
            defs = {k: root[k] for k in ("$defs", "definitions") if k in root}
            if Draft202012Validator({**schema, **defs}).is_valid(value):
                kept.append(alt)
        return kept or obj.alts

    def open_value(self) -> int | None:
        """Where the free-form value being written starts (a string without enum, format or
        pattern, or a number), or None: what the decoder bounds by the budget."""
        top = self._stack[-1] if self._stack else None
        if top is None or top.is_key or top.kind not in ("string", "number"):
            return None
        if any("enum" in a or "const" in a or is_shaped(a) for a in top.alts):
            return None
        return top.start

    # -- closing --------------------------------------------------------------------------------

    def closings(self) -> Iterator[str]:
        """Texts that may complete the document validly, the likeliest first.

        Mostly one; inside a `format` or `pattern` string several guesses at finishing the
        string, since only the grammar knows which continuations its regex allows.
        """
        if self.failed:
            return
        top = self._stack[-1] if self._stack else None
        starts = [""]
        if top is not None and top.kind == "string" and not top.is_key and not top.escape:
            starts = self._shaped_rests(top) or starts
        elif top is not None and top.kind == "number":
            starts = self._number_rests(top) or starts
        for start in starts:
            cursor = self.clone()
            if start and not cursor.feed(start):
                continue
            rest = cursor._finish()
            if rest is not None:
                yield start + rest

    def closing(self) -> str | None:
        """The likeliest shortest text that completes the document validly (None if unknown)."""
        return next(self.closings(), None)

    def _finish(self) -> str | None:
        out: list[str] = []
        for _ in range(_MAX_CLOSING_STEPS):
            if self.done:
                return "".join(out)
            piece = self._next_piece()
            if piece is None:
                return None
            if piece == "" and self._stack[-1].kind == "number":
                self._close()  # the number is complete as written
                continue
            if not self.feed(piece):
                return None
            out.append(piece)
        return None

    def _shaped_rests(self, top: _Frame) -> list[str]:
        typed = json.loads(self._value_text(top) + '"')
        rests: list[str] = []
        for alt in top.alts:
            enum_like = "enum" in alt or "const" in alt
            example = shaped_example(alt) if is_shaped(alt) and not enum_like else None
            if example is not None:
                tail = example[len(typed) :]
                # A digit the example has may not fit what was typed (day 31 of a 30-day month).
                variants = [d + tail[1:] for d in "01" if tail[:1].isdigit()]
                rests += [tail, *variants, *_SHAPED_TAILS]
        return [rest + '"' for rest in dict.fromkeys(rests)]

    def _next_piece(self) -> str | None:
        if not self._stack:
            return self.schemas.minimal({"anyOf": self._root})
        top = self._stack[-1]
        if top.kind not in ("string", "number", "literal") and self.doc[-1:] in (",", ":"):
            return " "  # the rest of an ", " or ": " separator
        if top.kind == "string":
            return self._close_string(top)
        if top.kind == "number":
            return self._close_number(top)
        if top.kind == "literal":
            return self._close_enum_like(top) or _literal_rest(self._value_text(top))
        if top.kind == "object":
            return self._close_object(top)
        return self._close_array(top)

    def _close_enum_like(self, top: _Frame) -> str | None:
        """Complete the value as one of its alternatives' `enum`/`const` members, if any."""
        typed = self._value_text(top)
        best: str | None = None
        for alt in top.alts:
            members = alt["enum"] if "enum" in alt else [alt["const"]] if "const" in alt else []
            for member in members:
                text = dump(member)
                if text.startswith(typed) and (best is None or len(text) - len(typed) < len(best)):
                    best = text[len(typed) :]
        return best

    def _close_string(self, top: _Frame) -> str | None:
        if top.escape:
            return "n" if top.escape == "\\" else "0" * (6 - len(top.escape))
        if top.is_key:
            return self._close_key(top)
        enum_rest = self._close_enum_like(top)
        typed = self._value_text(top)[1:]
        length = len(json.loads('"' + typed + '"'))
        best: str | None = enum_rest
        for alt in top.alts:
            if "enum" in alt or "const" in alt or kind_of(alt) not in ("string", "any"):
                continue
            if is_shaped(alt):
                example = shaped_example(alt)
                if example is None:
                    continue
                rest = example[len(typed) :] + '"'
            else:
                rest = "a" * max(0, int(alt.get("minLength", 0)) - length) + '"'
            if best is None or len(rest) < len(best):
                best = rest
        return best

    def _close_key(self, top: _Frame) -> str | None:
        typed = json.loads(self._value_text(top) + '"')
        parent = self._stack[-2]
        best: tuple[int, int, str] | None = None  # (not required, length, rest)
        for alt in parent.alts:
            allowed = _allowed_keys(alt, parent.keys)
            for key, required in allowed:
                if key.startswith(typed):
                    rest = dump(key)[len(dump(typed)) - 1 :]
                    rank = (0 if required else 1, len(rest), rest)
                    best = rank if best is None or rank < best else best
            blocked = any(required for _, required in allowed)
            if best is None and not blocked and alt.get("additionalProperties", True) is not False:
                best = (2, 1, '"')
        return None if best is None else best[2]

    def _close_number(self, top: _Frame) -> str | None:
        rests = self._number_rests(top)
        return rests[0] if rests else None

    def _number_rests(self, top: _Frame) -> list[str]:
        """Shortest endings that make the number valid (the grammar may want more digits)."""
        enum_rest = self._close_enum_like(top)
        if enum_rest is not None:
            return [enum_rest]
        typed = self._value_text(top)
        found: list[str] = []
        for size in range(4):
            for rest in _number_tails(size):
                if any(self._number_fits(typed + rest, alt) for alt in top.alts):
                    found.append(rest)
                    if len(found) == _NUMBER_TAILS_TRIED:
                        return found
        return found

    @staticmethod
    def _number_fits(text: str, alt: Schema) -> bool:
        kind = kind_of(alt)
        return kind in ("integer", "number", "any") and number_fits(
            text, alt, integer=kind == "integer"
        )

    def _close_object(self, top: _Frame) -> str | None:
        if top.state == "colon":
            return KEY_SEPARATOR
        if top.state == "value":
            assert top.key is not None
            alts = [property_schema(obj, top.key) for obj in top.alts]
            return self.schemas.minimal({"anyOf": [a for a in alts if a is not False]})
        best: str | None = None
        for alt in top.alts:
            rest = self._object_rest(alt, top)
            if rest is not None and (best is None or len(rest) < len(best)):
                best = rest
        return best

    def _object_rest(self, alt: Schema, top: _Frame) -> str | None:
        allowed = dict(_allowed_keys(alt, top.keys))
        missing = [k for k in required_in_order(alt) if k not in top.keys]
        order = list(alt.get("properties", {}))
        last = _last_index(alt, top.keys)
        if any(k not in order or order.index(k) < last for k in missing):
            return None  # this alternative cannot hold what was written
        pairs = []
        if top.state == "key" and not missing:
            optional = [k for k in allowed if k not in top.keys]
            if optional:
                missing = [min(optional, key=len)]
            elif alt.get("additionalProperties", True) is not False:
                value = self.schemas.minimal(alt.get("additionalProperties", True))
                if value is None:
                    return None
                pairs.append(dump("") + KEY_SEPARATOR + value)
            else:
                return None
        for key in missing:
            value = self.schemas.minimal(property_schema(alt, key))
            if value is None:
                return None
            pairs.append(dump(key) + KEY_SEPARATOR + value)
        lead = ITEM_SEPARATOR if top.state == "after" and pairs else ""
        return lead + ITEM_SEPARATOR.join(pairs) + "}"

    def _close_array(self, top: _Frame) -> str | None:
        if top.state == "value":
            alts = [item_schema(arr, top.count) for arr in top.alts]
            return self.schemas.minimal({"anyOf": alts})
        best: str | None = None
        for alt in top.alts:
            items = []
            for i in range(top.count, int(alt.get("minItems", 0))):
                item = self.schemas.minimal(item_schema(alt, i))
                if item is None:
                    break
                items.append(item)
            else:
                lead = ITEM_SEPARATOR if top.state == "after" and items else ""
                rest = lead + ITEM_SEPARATOR.join(items) + "]"
                if best is None or len(rest) < len(best):
                    best = rest
        return best


def _last_index(alt: Schema, seen: list[str]) -> int:
    """Position, in the `properties` order, of the last key written (past the end: extra)."""
    order = list(alt.get("properties", {}))
    last = -1
    for key in seen:
        last = max(last, order.index(key) if key in order else len(order))
    return last


def _allowed_keys(alt: Schema, seen: list[str]) -> list[tuple[str, bool]]:
    """Keys that may come next, and whether each is required.

    llguidance keeps the `properties` order, so nothing past the first missing required key
    can come before it.
    """
    order = list(alt.get("properties", {}))
    required = set(alt.get("required", []))
    allowed = []
    for key in order[_last_index(alt, seen) + 1 :]:
        allowed.append((key, key in required))
        if key in required:
            break
    return allowed


def _literal_rest(typed: str) -> str | None:
    for literal in _LITERALS:
        if literal.startswith(typed):
            return literal[len(typed) :]
    return None


def _number_tails(size: int) -> list[str]:
    if size == 0:
        return [""]
    shorter = _number_tails(size - 1)
    return [s + d for s in shorter for d in _NUMBER_TAIL_CHARS]
