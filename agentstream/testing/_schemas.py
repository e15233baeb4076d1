"""What a tool parameter is for, read from its JSON schema and its name (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._text import split_name, stem

__all__ = [
    "MAX_DEPTH",
    "has_people",
    "name_stems",
    "param_kind",
    "resolve",
    "schema_properties",
    "stem_set",
]

MAX_DEPTH = 8
"""How deep nested schemas are followed."""


def stem_set(words: str) -> frozenset[str]:
    """The stems of space-separated words."""
    return frozenset(stem(w) for w in words.split())


_PLACE = stem_set(
    "location city place destination origin country region town address where source "
    "departure arrival dest airport station area locality"
)
_ZONE = stem_set("timezone tz zone")
_EXPRESSION = stem_set("expression formula equation expr calculation math")
_PHRASE = stem_set(
    "query text q search prompt question input topic keywords keyword term message content subject"
)
_PERSON = stem_set(
    "name person user username traveller traveler guest passenger who owner author customer "
    "recipient"
)


def param_kind(name: str, schema: dict[str, Any]) -> str:
    """What a parameter is for, by its type and its name."""
    if "enum" in schema or "const" in schema:
        return "enum"
    kind = schema.get("type")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind in ("integer", "number"):
        return "number"
    if kind != "string":
        return str(kind)
    words = name_stems(name)
    if schema.get("format") in ("date", "date-time"):
        return "date"
    for group, label in (
        (_ZONE, "zone"),
        (_PLACE, "place"),
        (_EXPRESSION, "expression"),
        (_PHRASE, "phrase"),
        (_PERSON, "person"),
    ):
        if words & group:
            return label
    return "string"


def resolve(schema: Any, root: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Follow `$ref`, pick the non-null branch of `anyOf`/`oneOf`, merge `allOf`."""
    nullable = False
    for _ in range(MAX_DEPTH * 4):
        if not isinstance(schema, Mapping):
            return {}, nullable
        if isinstance(schema.get("$ref"), str):
            target = _pointer(root, schema["$ref"])
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            continue
        branches = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(branches, list) and branches:
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            real = [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
            nullable = nullable or len(real) < len(branches)
            schema = {**rest, **real[0]} if real else {"type": "null"}
            continue
        if isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged.update(resolve(part, root)[0])
            schema = merged
            continue
        kind = schema.get("type")
        if isinstance(kind, list):
            nullable = nullable or "null" in kind
            real_types = [k for k in kind if k != "null"]
            schema = {**schema, "type": real_types[0] if real_types else "null"}
        return dict(schema), nullable
    return {}, nullable


def _pointer(root: Mapping[str, Any], ref: str) -> dict[str, Any]:
    """The schema a local `#/...` reference points at; `{}` for anything else."""
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return {}
        node = node[part]
    return dict(node) if isinstance(node, Mapping) else {}


def schema_properties(
    schema: Mapping[str, Any], root: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    resolved, _ = resolve(schema, root)
    properties = resolved.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    return {k: resolve(v, root)[0] for k, v in properties.items() if isinstance(k, str)}


def has_people(schema: Any, root: Mapping[str, Any], depth: int) -> bool:
    if depth > MAX_DEPTH:
        return False
    resolved, _ = resolve(schema, root)
    for name, prop in schema_properties(resolved, root).items():
        kind = param_kind(name, prop)
        if kind == "person":
            return True
        target = prop.get("items") if kind == "array" else prop if kind == "object" else None
        if target is not None and has_people(target, root, depth + 1):
            return True
    return False


def name_stems(name: str) -> set[str]:
    """The stems of an identifier's words: `travel_dates` -> `{"travel", "dat"}`."""
    return {stem(w) for w in split_name(name)}
