"""Small wording helpers every report shares, so "1 drill" is never "1 drills" anywhere."""

from __future__ import annotations

_IRREGULAR = {"was": "were", "is": "are", "has": "have", "this": "these", "person": "people"}


def plural_word(n: int, word: str, many: str | None = None) -> str:
    """``word`` for one, its plural otherwise (``many`` when irregular)."""
    if n == 1:
        return word
    if many is not None:
        return many
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 drill``, ``2 drills``, ``0 incidents``, ``3 people``."""
    return f"{n} {plural_word(n, word, many)}"


__all__ = ["plural", "plural_word"]
