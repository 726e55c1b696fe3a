"""Edit a TOML document in place: set and remove keys, keeping everything else as written.

The user's settings file is theirs: their comments, blank lines, key order, quoting and
inline tables stay as they wrote them, and only the keys a change names are touched
(tomlkit keeps the document's layout; tomli_w would re-serialise it all). A leaf, so the
settings module can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

KeyPath = tuple[str, ...]


class TomlEditError(ValueError):
    """The text is not TOML tomlkit can edit, or a change cannot be written into it."""


def edit_toml(text: str, changes: Mapping[str, Any], removals: Iterable[KeyPath] = ()) -> str:
    """`text` with `changes` merged in (tables merge, other values replace) and each key path
    in `removals` deleted; a table left empty by a removal goes too."""
    try:
        document = tomlkit.parse(text)
        _merge(document, changes)
        for path in removals:
            _remove(document, path)
        return tomlkit.dumps(document)
    except TOMLKitError as exc:
        raise TomlEditError(str(exc)) from None


def _plain(value: Any) -> Any:
    """Settings values as TOML can hold them (tuples are arrays)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _merge(node: MutableMapping[str, Any], changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        current = node.get(key)
        if isinstance(value, Mapping) and isinstance(current, MutableMapping):
            _merge(current, value)
        else:
            node[key] = _plain(value)


def _remove(document: MutableMapping[str, Any], path: KeyPath) -> None:
    trail: list[MutableMapping[str, Any]] = [document]
    for part in path[:-1]:
        child = trail[-1].get(part)
        if not isinstance(child, MutableMapping):
            return  # nothing there to remove
        trail.append(child)
    if path[-1] not in trail[-1]:
        return
    del trail[-1][path[-1]]
    # `[providers.groq]` removed: an emptied `[providers]` goes too, never the document.
    for depth in range(len(trail) - 1, 0, -1):
        if trail[depth]:
            break
        del trail[depth - 1][path[depth - 1]]
