"""Classify a chat request (no I/O, no clocks): small-model work, tags and where they came from.

Tag sources, all merged:
- the model asked for: `local`, `cloud`, or `auto:TAG[,TAG]` (e.g. an OpenCode agent on
  `hybridge/auto:review`);
- the `x-hybridge-tags` header (OpenCode per-model `headers`);
- the body field `hybridge_tags` (OpenCode per-model/agent `options` land in the body);
- inline markers in the latest user instruction (`#local`, `#cloud`, `#tag:NAME`, see markers.py);
- path conventions matched in the current turn's intent only: the latest real user
  instruction (context blocks such as `<system-reminder>` left out, see anatomy.py) and the
  arguments of the tool calls made since, write-tool targets first, then the instruction,
  then reads/searches/commands. Each match records where it was, for `explain`. Paths that
  appear only in tool results (listings, grep output, file contents) or in context blocks
  (CLAUDE.md, AGENTS.md, environment) tag nothing;
- review signals (settings `routing.review_signals`): the agent's prompt names a reviewer,
  or the instruction is a `/review` command.

Small-model work is recognised by the system prompt's start after its client preamble
(settings `routing.small_tasks`: OpenCode's and Claude Code's title, summary and compaction
prompts), and by the client's own model name on `/v1/messages` (`routing.small_models`:
Claude Code's haiku-class background model; `local` is what `hybridge setup` maps it to).

Classification sets `request.tags` and gives the request a forwarded body without markers
and without `hybridge_tags` (copies; the client's own lists and dicts are not changed).
Tags already on the request are kept, so classifying twice gives the same result.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from router_core.routing.anatomy import instruction_text, system_body
from router_core.routing.conventions import ConventionMatch, match_groups
from router_core.routing.markers import find_markers, parse_tags, strip_markers
from router_core.routing.rules import RoutingRules
from router_core.types import JSON, ChatRequest

TAGS_HEADER = "x-hybridge-tags"
TAGS_FIELD = "hybridge_tags"
ROUTE_TAGS = ("local", "cloud")
SYSTEM_ROLES = ("system", "developer")
REVIEW_TAG = "review"
SMALL_MODEL_TASK = "background"  # the client's small/fast model (Claude Code's haiku)
INSTRUCTION_HEAD_CHARS = 400  # a command or review request is said at the start


@dataclass(slots=True)
class Classification:
    small_task: str | None  # "title", "summary", "compaction"...: small-model work
    tags: frozenset[str]
    sources: Mapping[str, str]  # tag -> where it first came from, for reasons
    matches: tuple[ConventionMatch, ...]
    markers: tuple[str, ...]  # inline markers found in the latest user message


def virtual_model(model: str) -> tuple[str, list[str]]:
    """(`auto`|`local`|`cloud`|the model, tags it carries): `auto:review,ui-mock`."""
    base, sep, rest = model.partition(":")
    if sep and base == "auto":
        return base, parse_tags(rest, "model")
    return model, []


def _texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    yield text


def _strip_content(content: Any) -> Any:
    """Content without markers; the same object when nothing changed."""
    if isinstance(content, str):
        return strip_markers(content)
    if not isinstance(content, list):
        return content
    changed = False
    parts = []
    for part in content:
        text = part.get("text") if isinstance(part, dict) else None
        if isinstance(text, str) and "#" in text:
            stripped = strip_markers(text)
            if stripped is not text:
                part = {**part, "text": stripped}
                changed = True
        parts.append(part)
    return parts if changed else content


def _strip_latest(messages: list[JSON], latest: int) -> list[JSON] | None:
    """A copy of `messages` with markers stripped from the latest user message, or None."""
    if latest < 0:
        return None
    message = messages[latest]
    content = message.get("content")
    stripped = _strip_content(content)
    if stripped is content:
        return None
    out = list(messages)
    out[latest] = {**message, "content": stripped}
    return out


def _system_head(messages: list[JSON]) -> list[str]:
    """The heads of the leading system prompt's texts, each without its client preamble."""
    heads = []
    for message in messages:
        if message.get("role") not in SYSTEM_ROLES:
            break
        content = message.get("content")
        for text in (content,) if content.__class__ is str else _texts(content):
            heads.append(system_body(text.lstrip() if text[:1].isspace() else text))
    return heads


def _small_task(request: ChatRequest, heads: list[str], rules: RoutingRules) -> str | None:
    """Small-model work: a leading system prompt starting with a small-task prefix, or
    Claude Code's background (haiku-class) model."""
    anthropic = request.anthropic_body
    if anthropic is not None:
        asked = anthropic.get("model")
        if isinstance(asked, str):
            lowered = asked.lower()
            # `<provider>/<model>` names an upstream exactly: the client chose it, not a tier.
            if lowered == "local" or ("/" not in lowered and any(part in lowered for part in rules.small_models)):
                return SMALL_MODEL_TASK
    prefixes = rules.small_task_prefixes
    if not prefixes:
        return None
    for text in heads:
        if text.startswith(prefixes):
            return next(task for prefix, task in rules.small_tasks if text.startswith(prefix))
    return None


def _block_texts(content: Any) -> list[str]:
    """A user message's instruction texts (context blocks left out)."""
    if content.__class__ is str:
        text = instruction_text(content)
        return [text] if text else []
    texts = []
    if content.__class__ is list:
        for part in content:
            raw = part.get("text") if part.__class__ is dict else None
            if isinstance(raw, str):
                kept = instruction_text(raw)
                if kept:
                    texts.append(kept)
    return texts


def _latest_instruction(messages: list[JSON]) -> tuple[int, list[str]]:
    """(index, texts) of the latest user message holding a real instruction; (-1, [])."""
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if message.get("role") == "user":
            texts = _block_texts(message.get("content"))
            if texts:
                return i, texts
    return -1, []


def _turn_groups(
    messages: list[JSON], latest: int, latest_texts: list[str], write_tools: frozenset[str]
) -> list[tuple[str, list[str]]]:
    """Where the current turn names paths, strongest first: write-tool targets, the
    instruction, then the other tool calls' arguments (reads, searches, commands). Tool
    results and context blocks are not intent: what a listing or grep shows is not what
    the agent is working on."""
    writes: list[str] = []
    reads: list[str] = []
    write_names: dict[str, None] = {}
    read_names: dict[str, None] = {}
    for message in messages[latest + 1 :]:
        calls = message.get("tool_calls")
        if not calls or message.get("role") != "assistant":
            continue
        for call in calls:
            function = call.get("function") if call.__class__ is dict else None
            if function.__class__ is not dict:
                continue
            args = function.get("arguments")
            if args.__class__ is not str:
                continue
            name = function.get("name")
            name = name if name.__class__ is str else "tool"
            if name.lower() in write_tools:
                writes.append(args)
                write_names[name] = None
            else:
                reads.append(args)
                read_names[name] = None
    groups: list[tuple[str, list[str]]] = []
    if writes:
        groups.append((f"{'/'.join(write_names)} call (write)", writes))
    groups.append(("latest user instruction", latest_texts))
    if reads:
        groups.append((f"{'/'.join(read_names)} call", reads))
    return groups


def _review_signal(heads: list[str], latest_texts: list[str], rules: RoutingRules) -> str | None:
    """Where the client says this is a review: its agent's prompt or a /review command."""
    signal = rules.review_signal
    if signal is None:
        return None
    literal = rules.review_literal
    for head in heads:
        if not literal or literal in head.lower():
            found = signal.search(head)
            if found:
                return f"agent prompt says '{found.group(0).strip()}'"
        break  # the agent's own prompt comes first
    if latest_texts:
        head = latest_texts[0].lstrip()[:INSTRUCTION_HEAD_CHARS]
        if not literal or literal in head.lower():
            found = signal.search(head)
            if found:
                return f"instruction starts '{found.group(0).strip()}'"
    return None


def _latest_typed(messages: list[JSON]) -> int:
    """In Anthropic's shape tool results are user messages too: the latest one whose text
    blocks hold a real instruction."""
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if message.get("role") == "user" and _block_texts(message.get("content")):
            return i
    return -1


def _strip_anthropic(body: JSON) -> JSON:
    """The same stripping on an Anthropic Messages body kept for an Anthropic upstream."""
    messages = body.get("messages")
    new_messages = None
    if isinstance(messages, list):
        new_messages = _strip_latest(messages, _latest_typed(messages))
    if new_messages is None and TAGS_FIELD not in body:
        return body
    out = {k: v for k, v in body.items() if k != TAGS_FIELD}
    if new_messages is not None:
        out["messages"] = new_messages
    return out


def classify(request: ChatRequest, rules: RoutingRules) -> Classification:
    sources: dict[str, str] = dict.fromkeys(request.tags, "earlier classification") if request.tags else {}
    messages = request.messages

    model = request.model
    if ":" in model:
        for tag in virtual_model(model)[1]:
            sources.setdefault(tag, f"model '{model}'")
    elif model in ROUTE_TAGS:
        sources.setdefault(model, f"model '{model}'")

    header = request.headers.get(TAGS_HEADER)
    if header:
        for tag in parse_tags(header, TAGS_HEADER):
            sources.setdefault(tag, f"header {TAGS_HEADER}")

    body = request.body
    if TAGS_FIELD in body:
        for tag in parse_tags(body[TAGS_FIELD], TAGS_FIELD):
            sources.setdefault(tag, f"body field {TAGS_FIELD}")

    latest, latest_texts = _latest_instruction(messages)
    markers: list[str] = []
    if rules.inline_markers:
        for text in latest_texts:
            for written, tag in find_markers(text):
                sources.setdefault(tag, f"marker {written}")
                if written not in markers:
                    markers.append(written)

    new_messages = _strip_latest(messages, latest) if markers else None
    if new_messages is not None or TAGS_FIELD in body:
        forwarded = {k: v for k, v in body.items() if k != TAGS_FIELD}
        if new_messages is not None:
            forwarded["messages"] = new_messages
            request.messages = new_messages
        request.body = forwarded
    if request.anthropic_body is not None and (markers or TAGS_FIELD in request.anthropic_body):
        request.anthropic_body = _strip_anthropic(request.anthropic_body)

    matches: tuple[ConventionMatch, ...] = ()
    if rules.conventions:
        groups = _turn_groups(messages, latest, latest_texts, rules.write_tools)
        matches = match_groups(rules.conventions, groups)
        for match in matches:
            sources.setdefault(match.tag, f"convention '{match.glob}' matched {match.path} in the {match.where}")

    heads = _system_head(messages)
    review = None
    if REVIEW_TAG not in sources:
        review = _review_signal(heads, latest_texts, rules)
        if review:
            sources[REVIEW_TAG] = f"review signal: {review}"

    small_task = _small_task(request, heads, rules)
    tags = frozenset(sources)
    request.tags = tags
    request.small_task = small_task
    return Classification(small_task, tags, sources, matches, tuple(markers))
