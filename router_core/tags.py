"""What a routing tag may be: lower-case letters, digits, `_` and `-`, at most 64.

A leaf, so settings, client configs and the inline-marker parser share one pattern.
"""

from __future__ import annotations

import re

# Written into larger patterns too (router_core/routing/markers.py's `#tag:a,b`).
TAG_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
TAG_RE = re.compile(TAG_PATTERN)


def is_tag(text: str) -> bool:
    return TAG_RE.fullmatch(text) is not None
