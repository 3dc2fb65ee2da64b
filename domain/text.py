"""The one rule for text taken from a client: no NUL and no unpaired surrogates.

PostgreSQL refuses NUL in ``text`` and a surrogate cannot be encoded to UTF-8 (for the database,
Redis or a header), so either would fail far from the input as a 500. JSON decoding joins valid
surrogate pairs, so any surrogate code point left in a decoded ``str`` is an unpaired one.
"""

import re
from collections.abc import Iterable
from typing import TypeAlias

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
# JSON escapes that can decode to a forbidden character (valid surrogate pairs match too).
_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")

_NEXT_BRACKET = re.compile(r'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+"?)*+([\[\]{}]|\Z)', re.DOTALL)

RULE = "text must not contain NUL or unpaired surrogate characters"

# A chain of (parent, key) pairs: the location is only spelled out when something is found.
_Trail: TypeAlias = "tuple[_Trail, object] | None"


def is_clean_text(value: str) -> bool:
    return _FORBIDDEN.search(value) is None


def json_text_is_clean(text: str) -> bool:
    """A sufficient (not necessary) test on a JSON document's text, at the regex engine's speed:
    without forbidden characters or escapes of them, nothing decoded from it can hold any."""
    return is_clean_text(text) and _RISKY_ESCAPE.search(text) is None


def find_unclean_text(value: object) -> str | None:
    """Where a forbidden string in a decoded JSON-like value is (``""`` for the value itself,
    else a dotted location such as ``files.0.name``), or ``None`` if all its text is clean.

    Checks dict keys and values and list items with an explicit stack: no recursion limit.
    """
    stack: list[tuple[object, _Trail]] = [(value, None)]
    while stack:
        item, trail = stack.pop()
        if isinstance(item, str):
            if _FORBIDDEN.search(item) is not None:
                return _where(trail)
            continue
        if isinstance(item, dict):
            children: Iterable[tuple[object, object]] = item.items()
        elif isinstance(item, (list, tuple)):
            children = enumerate(item)
        else:
            continue
        for key, child in children:
            if isinstance(key, str) and _FORBIDDEN.search(key) is not None:
                return _where((trail, "(key)"))
            if isinstance(child, str):
                if _FORBIDDEN.search(child) is not None:
                    return _where((trail, key))
            elif isinstance(child, (dict, list, tuple)) and child:
                stack.append((child, (trail, key)))
    return None


def _where(trail: _Trail) -> str:
    parts: list[str] = []
    while trail is not None:
        trail, key = trail
        part = str(key)
        # The location is echoed in an error detail, so it must be clean text itself.
        parts.append(part if is_clean_text(part) else "?")
    return ".".join(reversed(parts))


def nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether the JSON ``text`` nests arrays and objects more than ``max_depth`` deep.

    ``json.loads`` recurses once per level and fails with ``RecursionError``, not ``ValueError``,
    on deep input: check before parsing, without recursion, stopping as soon as it is too deep.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    for match in _NEXT_BRACKET.finditer(text):
        bracket = match.group(1)
        if bracket in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return True
        elif bracket:
            depth -= 1
    return False
