"""Reading a user's message for the offline model: words, names, numbers, dates, maths (no I/O)."""

from __future__ import annotations

import ast
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["Entity", "Message", "Token", "read_message", "split_name", "stem", "stems"]


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


STOP_WORDS = _set(
    """
    a about above after again all also am an and any are as at be been before being below
    between both but by can could did do does doing done down during each either else
    few for from further get gets give had has have having he her here hers him his how i
    if in into is it its itself just let like me might more most much must my need no nor
    not now of off on once only or other our out over own please same she should show so
    some such tell than thank thanks that the their them then there these they this those
    through to too under until up us use using very want was we were what when where which
    while who whom why will with would yes you your yours
    current data value values result results return returns given tool tools function
    simulated offline real information info find look know okay ok hi hello hey
    """
)
"""Words that say nothing about which tool fits."""

PLACE_PREPOSITIONS = _set(
    "in at to from near into via toward towards around across between visit visiting"
)
_PREPOSITIONS = PLACE_PREPOSITIONS | {"for", "with", "by", "on", "of", "and"}
_VERBS = _set(
    """
    plan find search book tell show give compute calculate check convert list make create
    send buy order help add set run call fetch lookup estimate count describe explain say
    """
)
_PARTICLES = _set("de da del di do dos la le los las von van du des el al upon")
_CALENDAR = _set(
    """
    monday tuesday wednesday thursday friday saturday sunday january february march april
    may june july august september october november december today tomorrow tonight
    """
)
_TOKEN = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<word>[^\W\d_]+(?:['\u2019][^\W\d_]+)*)"
    r"|(?P<punct>[^\w\s])"
)
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_ZONE = re.compile(r"\b[A-Z][A-Za-z_]+/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?\b")
_QUOTED = re.compile(r"\"([^\"]{1,200})\"|\u201c([^\u201d]{1,200})\u201d|'([^']{1,200})'(?!\w)")
_NUM = r"(?:\d+(?:\.\d+)?|pi)"
_MATH_WORDS = (
    (re.compile(rf"\bsquare root of\s+({_NUM})", re.I), r"sqrt(\1)"),
    (re.compile(rf"({_NUM})\s+squared\b", re.I), r"\1**2"),
    (re.compile(rf"({_NUM})\s+cubed\b", re.I), r"\1**3"),
    (re.compile(r"(?<=[\d)])\s*(?:to the power of|\^)\s*(?=[\d(])", re.I), " ** "),
    (re.compile(r"(?<=[\d)])\s*(?:times|multiplied by|x|\u00d7)\s*(?=[\d(])", re.I), " * "),
    (re.compile(r"(?<=[\d)])\s*(?:divided by|over|\u00f7)\s*(?=[\d(])", re.I), " / "),
    (re.compile(r"(?<=[\d)])\s+plus\s+(?=[\d(])", re.I), " + "),
    (re.compile(r"(?<=[\d)])\s+minus\s+(?=[\d(])", re.I), " - "),
    (re.compile(r"(?<=[\d)])\s+mod(?:ulo)?\s+(?=[\d(])", re.I), " % "),
)
_EXPRESSION = re.compile(
    r"(?:\b(?:sqrt|sin|cos|tan|log10|log2|log|exp|abs|factorial|pi)\b"
    r"|\d+(?:\.\d+)?|\*\*|//|[-+*/%()]|[ \t])+"
)
_SUFFIXES = ("ation", "ator", "ating", "ated", "ate", "ing", "ed", "er", "e")
_PLURALS = (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh"))


def split_name(identifier: str) -> list[str]:
    """`get_weather`, `getWeather`, `get-weather` -> `["get", "weather"]`."""
    return [part.lower() for part in _CAMEL.findall(identifier)]


def stem(word: str) -> str:
    """A light stem, so that "weathers", "weather" and "Weather's" meet."""
    w = word.lower().replace("\u2019", "'").removesuffix("'s")
    for suffix, replacement in _PLURALS:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + replacement
            break
    else:
        if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
            w = w[:-1]
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    return w


def stems(text: str) -> list[str]:
    """The stems of the words of `text` that are not stop-words, in order."""
    words = (part[2].lower() for part in _TOKEN.findall(text) if part[2])
    return [stem(w) for w in words if w not in STOP_WORDS and stem(w) not in STOP_WORDS]


@dataclass(frozen=True, slots=True)
class Token:
    """A word, number, date or punctuation mark of the message."""

    kind: str
    """`"word"`, `"number"`, `"date"` or `"punct"`."""
    text: str
    stem: str
    index: int


@dataclass(frozen=True, slots=True)
class Entity:
    """A capitalised name in the message: a place or a person."""

    text: str
    first: int
    """Index of its first token."""
    last: int
    preposition: str | None
    """The word that governs it ("in Paris and Tokyo": "in" for both)."""

    @property
    def is_place(self) -> bool:
        """Whether the text puts it where a place goes ("in", "to", "from", ...)."""
        return self.preposition in PLACE_PREPOSITIONS


@dataclass(frozen=True, slots=True)
class Message:
    """What the offline model reads in a user message."""

    text: str
    tokens: tuple[Token, ...]
    entities: tuple[Entity, ...]
    expression: str | None
    """An arithmetic expression in Python syntax, if the message holds one."""
    zones: tuple[str, ...]
    """IANA time zone names written out ("Europe/Paris")."""
    quoted: tuple[str, ...]
    vocabulary: frozenset[str] = frozenset()
    """The tools' words (stems and enum values), which are never names."""

    def numbers(self, first: int = 0, last: int | None = None) -> list[Token]:
        """The number tokens between token indexes `first` and `last` (inclusive)."""
        end = len(self.tokens) if last is None else last + 1
        return [t for t in self.tokens[first:end] if t.kind == "number"]

    def dates(self) -> list[date]:
        """The dates written out (ISO, or "today"/"tomorrow"), in order."""
        found: list[date] = []
        for token in self.tokens:
            if token.kind == "date":
                try:
                    found.append(date.fromisoformat(token.text))
                except ValueError:
                    continue
            elif token.stem in ("today", "tomorrow"):
                found.append(date.today() + timedelta(days=token.stem == "tomorrow"))
        return found

    def near(self, token: Token, wanted: Collection[str], distance: int = 3) -> bool:
        """Whether a word whose stem is in `wanted` is within `distance` tokens of `token`."""
        lo, hi = max(0, token.index - distance), token.index + distance + 1
        return any(t.kind == "word" and t.stem in wanted for t in self.tokens[lo:hi])

    def phrase(self) -> str:
        """The gist of the message: what follows "for"/"about", else it without question words."""
        text = self.text.strip().rstrip("?!.").strip()
        for marker in (" about ", " regarding ", " for ", ": "):
            head, found, tail = text.rpartition(marker)
            if found and head and len(tail.split()) >= 1:
                return tail.strip()
        words = text.split()
        while len(words) > 1 and words[0].lower().strip(",'\u2019") in STOP_WORDS | {"what's"}:
            words.pop(0)
        return " ".join(words)


def read_message(text: str, vocabulary: Collection[str] = ()) -> Message:
    """Read `text`; words whose stem is in `vocabulary` (the tools' words) are never names."""
    text = " ".join(text.split())
    normal = text
    for pattern, replacement in _MATH_WORDS:
        normal = pattern.sub(replacement, normal)
    expression, rest = _expression(normal)
    tokens = tuple(
        Token(kind, value, stem(value) if kind == "word" else value, i)
        for i, (kind, value) in enumerate(
            (m.lastgroup or "punct", m.group()) for m in _TOKEN.finditer(rest)
        )
    )
    quoted = tuple(next(g for g in m.groups() if g) for m in _QUOTED.finditer(text))
    return Message(
        text=text,
        tokens=tokens,
        entities=tuple(_entities(tokens, vocabulary)),
        expression=expression,
        zones=tuple(_ZONE.findall(text)),
        quoted=quoted,
        vocabulary=frozenset(vocabulary),
    )


def _expression(text: str) -> tuple[str | None, str]:
    """The longest arithmetic expression in `text`, and `text` without it."""
    masked = re.sub(r"\d{4}-\d{2}-\d{2}", lambda m: "#" * len(m.group()), text)
    best: tuple[int, int] | None = None
    for match in _EXPRESSION.finditer(masked):
        start, end = _trim(masked, match.start(), match.end())
        if end - start > (best[1] - best[0] if best else 0) and _is_formula(text[start:end]):
            best = (start, end)
    if best is None:
        return None, text
    start, end = best
    return text[start:end], f"{text[:start]} {text[end:]}"


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Narrow `text[start:end]` to balanced parentheses without stray operators at the ends."""
    while start < end:
        piece = text[start:end]
        stripped = piece.strip(" \t+*/%")
        if stripped != piece:
            start += piece.index(stripped[:1]) if stripped else len(piece)
            end = start + len(stripped)
            continue
        depth = 0
        for char in piece:
            depth += (char == "(") - (char == ")")
            if depth < 0:
                break
        if depth < 0 and piece.endswith(")"):
            end -= 1
        elif depth > 0 and piece.startswith("("):
            start += 1
        else:
            break
    return start, end


def _is_formula(candidate: str) -> bool:
    try:
        tree = ast.parse(candidate.strip(), mode="eval")
    except SyntaxError:
        return False
    return isinstance(tree.body, ast.BinOp | ast.Call | ast.UnaryOp)


def _entities(tokens: tuple[Token, ...], vocabulary: Collection[str]) -> list[Entity]:
    entities: list[Entity] = []
    i = 0
    while i < len(tokens):
        if not _capitalised(tokens, i, vocabulary):
            i += 1
            continue
        last = i
        j = i + 1
        while j < len(tokens):
            if _capitalised(tokens, j, vocabulary, inner=True):
                last = j
            elif not (tokens[j].text in _PARTICLES and _capitalised(tokens, j + 1, vocabulary)):
                break
            j += 1
        name = " ".join(t.text for t in tokens[i : last + 1])
        entities.append(Entity(name, i, last, _governor(tokens, i, entities)))
        i = last + 1
    return entities


def _capitalised(
    tokens: tuple[Token, ...], i: int, vocabulary: Collection[str], *, inner: bool = False
) -> bool:
    if i >= len(tokens):
        return False
    token = tokens[i]
    if token.kind != "word" or not token.text[0].isupper():
        return False
    lower = token.text.lower()
    if lower in STOP_WORDS or lower in _CALENDAR or lower.startswith(("what'", "it'", "i'")):
        return False
    if token.stem in vocabulary or lower in vocabulary:
        return False  # "Celsius", "Weather": the tools' own words
    sentence_start = i == 0 or tokens[i - 1].text in (".", "!", "?", ":", ";")
    # A sentence's first word is capitalised anyway ("Plan a trip"); "Paris weather?" is not.
    return inner or not sentence_start or lower not in _VERBS


def _governor(tokens: tuple[Token, ...], first: int, before: list[Entity]) -> str | None:
    """The preposition an entity hangs from, looking back past "and", commas and names."""
    inside = {i for e in before for i in range(e.first, e.last + 1)}
    for i in range(first - 1, -1, -1):
        token = tokens[i]
        lower = token.text.lower()
        if i in inside or token.kind in ("number", "date") or lower in ("and", "or", "both"):
            continue
        if token.kind == "punct":
            if token.text in ",&()":
                continue
            return None
        if lower in _PREPOSITIONS and lower != "and":
            return lower
        return None
    return None
