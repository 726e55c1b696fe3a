"""Path conventions: `glob -> tag` rules matched against file paths named in a request.

A glob matches a path, or any tail of it that starts after a `/`, so `lib/auth/*` matches
`/home/me/app/lib/auth/session.ts` as well as `lib/auth/session.ts`. Syntax: `*` (within
one directory), `**` (any depth), `?`, `[abc]`, `{sql,prisma}`; matching ignores case and
reads `\\` as `/`.

Hot path: each glob is compiled once per settings into a regex plus the longest literal it
must contain (`migrations/`, `.sql`). Text is scanned for that literal with `str.find`
(C speed), and only around a hit is the path token cut out and matched. Globs without a
usable literal fall back to tokenizing the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from router_core.globs import expand_braces, glob_to_regex, required_literal

# A run of characters a path can hold (ASCII: the common case, and cheap to scan).
_PATH_RUN = re.compile(r"[A-Za-z0-9_.~@+\-/\\]*")
# A run of path characters holding a separator or a dot: the fallback tokenizer.
_PATH_TOKEN = re.compile(r"(?<![\w.~@+\-/\\])(?=[\w.~@+\-/\\]*[/\\.])[\w.~@+\-/\\]+")
_GLOB_CHARS = frozenset("*?{}")
# Longest path we cut out around a literal hit (a real path is far shorter).
_MAX_PATH = 512


@dataclass(frozen=True, slots=True)
class ConventionMatch:
    glob: str
    tag: str
    path: str
    # Where in the request the path was: "edit call", "instruction", "read call"... ("" unknown).
    where: str = ""


@dataclass(frozen=True, slots=True)
class CompiledConvention:
    glob: str
    tag: str
    regex: re.Pattern[str]
    literal: str  # lower-case text every matching path contains; "" = none usable
    windows_literal: str  # the same with `\` separators ("" when it has none)


def compile_conventions(conventions: Mapping[str, str]) -> tuple[CompiledConvention, ...]:
    """Compile `glob -> tag` (an empty tag switches a shipped convention off)."""
    compiled = []
    for glob, tag in conventions.items():
        if not tag:
            continue
        for one in expand_braces(glob):
            regex = re.compile(glob_to_regex(one), re.IGNORECASE | re.DOTALL)
            literal = required_literal(one)
            windows = literal.replace("/", "\\") if "/" in literal else ""
            compiled.append(CompiledConvention(glob, tag, regex, literal, windows))
    return tuple(compiled)


def _normalize(path: str) -> str:
    path = path.replace("\\", "/").rstrip(".-")
    while "//" in path:
        path = path.replace("//", "/")
    return path


def _token_at(text: str, start: int, end: int) -> str | None:
    """The run of path characters around text[start:end] (scanned by regex, not by loop).

    None when the run is part of a glob pattern (`**/*.sql` in a glob tool's arguments
    names files to look for, not a file).
    """
    floor = max(0, start - _MAX_PATH)
    before = text[floor:start][::-1]
    left = start - _PATH_RUN.match(before).end()  # type: ignore[union-attr]
    if left > 0 and text[left - 1] in _GLOB_CHARS:
        return None
    right = _PATH_RUN.match(text, end, end + _MAX_PATH).end()  # type: ignore[union-attr]
    if right < len(text) and text[right] in _GLOB_CHARS:
        return None
    return text[left:right]


def _first_match(
    conv: CompiledConvention, literal: str, at: int, lowered: str, source: str, where: str
) -> ConventionMatch | None:
    """The first path around an occurrence of `literal` (from `at` on) that `conv` matches."""
    while at != -1:
        end = at + len(literal)
        token = _token_at(source, at, end)
        if token is not None:
            path = _normalize(token)
            if conv.regex.fullmatch(path):
                return ConventionMatch(conv.glob, conv.tag, path, where)
        at = lowered.find(literal, end)
    return None


def _first_token_match(conv: CompiledConvention, tokens: list[str], where: str) -> ConventionMatch | None:
    for path in tokens:
        if conv.regex.fullmatch(path):
            return ConventionMatch(conv.glob, conv.tag, path, where)
    return None


def match_texts(
    conventions: tuple[CompiledConvention, ...], texts: Iterable[str], where: str = ""
) -> tuple[ConventionMatch, ...]:
    """The first path each convention matches in `texts` (in order), one match per glob.

    The texts are searched as one (joined by newlines, which no path holds), so each
    convention costs one `str.find` however many texts there are; one match is all a tag
    needs, so a convention is not searched further once it has matched.
    """
    if not conventions:
        return ()
    text = "\n".join(texts)
    lowered = text.lower()
    # A few characters change length when lower-cased; cut paths from the lowered text
    # then, so positions agree.
    source = text if len(lowered) == len(text) else lowered
    backslash = "\\" in text
    tokens: list[str] | None = None
    found: list[ConventionMatch] = []
    for conv in conventions:
        match = None
        if conv.literal:
            at = lowered.find(conv.literal)
            if at != -1:
                match = _first_match(conv, conv.literal, at, lowered, source, where)
            if match is None and backslash and conv.windows_literal:
                at = lowered.find(conv.windows_literal)
                if at != -1:
                    match = _first_match(conv, conv.windows_literal, at, lowered, source, where)
        else:
            if tokens is None:
                tokens = [_normalize(m.group()) for m in _PATH_TOKEN.finditer(text)]
            match = _first_token_match(conv, tokens, where)
        if match is not None:
            found.append(match)
    return tuple(found)


def match_groups(
    conventions: tuple[CompiledConvention, ...], groups: Iterable[tuple[str, list[str]]]
) -> tuple[ConventionMatch, ...]:
    """Match (where, texts) groups strongest first: a convention is credited to the first
    group it matches in, and is not searched for in later ones."""
    found: list[ConventionMatch] = []
    left = conventions
    for where, texts in groups:
        if not left:
            break
        if not texts:
            continue
        matches = match_texts(left, texts, where)
        if matches:
            found += matches
            done = {m.glob for m in matches}
            left = tuple(c for c in left if c.glob not in done)
    return tuple(found)
