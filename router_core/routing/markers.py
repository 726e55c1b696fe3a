"""Inline routing markers a user types into a message, and tag parsing.

Syntax (case-insensitive, a word of its own: between spaces, quotes, brackets, line ends):

    #local            serve this turn locally
    #cloud            send this turn to the cloud model
    #tag:NAME         add tag NAME (several: `#tag:auth,billing` or repeat the marker)

Only the latest user message's markers steer routing, and they are stripped from it before
the request goes upstream, on every step of the turn. Markers of earlier turns stay in the
history the client resends: routing ignores them, and leaving them saves walking the whole
history on every request (the classify + decide budget is tens of microseconds).
"""

from __future__ import annotations

import re

from router_core.errors import BadRequest
from router_core.tags import TAG_PATTERN as _TAG
from router_core.tags import is_tag

# A marker stands alone: after the start, a space, a quote or an opening bracket (`opencode
# run "..."` sends the prompt quoted), and before a space, punctuation, a closing quote or
# bracket, or the end. One space after it goes too, so stripping leaves no double space.
MARKER_RE = re.compile(
    rf"(?<![^\s\"'(\[])#(?P<kind>local|cloud|tag:(?P<tags>{_TAG}(?:,{_TAG})*))(?=[\s.,;:!?)\]\"']|$) ?",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"[,\s]+")


def find_markers(text: str) -> list[tuple[str, str]]:
    """[(marker as written, tag)] in `text`; `#local`/`#cloud` give tags local/cloud."""
    if "#" not in text:
        return []
    found = []
    for m in MARKER_RE.finditer(text):
        written = m.group(0).rstrip()
        if m.group("tags"):
            found += [(written, tag.lower()) for tag in m.group("tags").split(",")]
        else:
            found.append((written, m.group("kind").lower()))
    return found


def strip_markers(text: str) -> str:
    """`text` without its markers (the same object when it holds none)."""
    if "#" not in text:
        return text
    stripped, count = MARKER_RE.subn("", text)
    return stripped.rstrip(" ") if count else text


def parse_tags(raw: object, where: str) -> list[str]:
    """Tags from a header value or the `hybridge_tags` body field (string or list)."""
    if isinstance(raw, str):
        items = _SPLIT.split(raw)
    elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        items = [part for x in raw for part in _SPLIT.split(x)]
    else:
        raise BadRequest(f"'{where}' must be a string or an array of strings", param=where)
    tags = []
    for item in items:
        tag = item.strip().lower()
        if not tag:
            continue
        if not is_tag(tag):
            raise BadRequest(
                f"'{where}': '{item[:40]}' is not a tag (letters, digits, '_' and '-'; at most 64)",
                param=where,
            )
        tags.append(tag)
    return tags
