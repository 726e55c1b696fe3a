"""Path globs as routing conventions write them: `*` (within one directory), `**` (any
depth), `?`, `[abc]`, `{sql,prisma}`; `\\` reads as `/`.

A leaf, so settings can check a glob without importing routing.
"""

from __future__ import annotations

import re

_BRACES = re.compile(r"\{([^{}]*)\}")
_MIN_LITERAL = 2


def expand_braces(glob: str) -> list[str]:
    """`**/*.{sql,prisma}` -> [`**/*.sql`, `**/*.prisma`] (nested braces expand too)."""
    match = _BRACES.search(glob)
    if match is None:
        return [glob]
    head, tail = glob[: match.start()], glob[match.end() :]
    return [x for option in match.group(1).split(",") for x in expand_braces(head + option + tail)]


def glob_to_regex(glob: str) -> str:
    """Translate one brace-free glob into a regex for `fullmatch` on a `/`-separated path."""
    pattern = glob.replace("\\", "/").lstrip("/")
    while pattern.startswith("./"):
        pattern = pattern[2:]
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(ch))
                i += 1
                continue
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    # A glob may match any tail of the path that starts after a separator.
    return "(?:.*/)?" + "".join(out)


def required_literal(glob: str) -> str:
    """The longest wildcard-free run every match must contain, lower-cased."""
    pattern = glob.replace("\\", "/").lstrip("/")
    # `**/` may match nothing, so the separator next to it is not required text.
    pattern = pattern.replace("**/", "\0").replace("/**", "/\0")
    runs = re.split(r"[*?\[\]\0]", pattern)
    best = max(runs, key=len, default="")
    return best.lower() if len(best) >= _MIN_LITERAL else ""


def check_glob(glob: str) -> str | None:
    """Why `glob` is unusable, or None."""
    if not glob.strip():
        return "a convention glob cannot be empty"
    try:
        for one in expand_braces(glob):
            re.compile(glob_to_regex(one))
    except re.error as exc:
        return f"'{glob}' is not a valid glob ({exc})"
    return None
