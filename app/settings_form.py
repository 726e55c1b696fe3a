"""What the settings dialog writes: form values turned into changes to the user's file (no Qt here).

Only values that differ from the settings in force are written, so the user's file keeps
holding just what they changed. Removals (a provider, a convention) are key paths deleted
from the user's file. Validation is router_core.settings.validate's, on the merged whole;
its problems name the key, and `field_for` finds the form field that shows each one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router_core.errors import SettingsError
from router_core.key_check import missing_keys
from router_core.settings import (
    ProviderSettings,
    Settings,
    merge,
    read_toml,
    shipped_defaults,
    update_user_file,
    validate,
)

KeyPath = tuple[str, ...]
_KEY = re.compile(r"^([A-Za-z_][\w.\-\[\]]*):\s")


@dataclass
class ProviderRow:
    name: str
    kind: str
    base_url: str
    api_key_ref: str = ""  # the reference kept in settings ("keyring:NAME" / "env:VAR"), never a key


@dataclass
class FormValues:
    """Text as typed in the form; parsed here so a bad number is named like any other problem."""

    port: str
    local_model: str
    cloud_model: str
    heavy_model: str
    ui_model: str
    heavy_tags: str
    ui_tags: str
    inline_markers: bool
    conventions: list[tuple[str, str]]
    daily_usd: str
    monthly_usd: str
    warn_at: str
    budget_action: str
    baseline_model: str
    electricity_price: str
    privacy_escalation: str
    providers: list[ProviderRow] = field(default_factory=list)


@dataclass
class FormChanges:
    changes: dict[str, Any]
    removals: list[KeyPath]
    problems: list[str]  # values that are not even numbers: never sent to validation


def form_from_settings(settings: Settings) -> FormValues:
    r, b, p = settings.routing, settings.budget, settings.pricing
    return FormValues(
        port=str(settings.server.port),
        local_model=r.local_model,
        cloud_model=r.cloud_model,
        heavy_model=r.heavy_model,
        ui_model=r.ui_model,
        heavy_tags=", ".join(r.heavy_tags),
        ui_tags=", ".join(r.ui_tags),
        inline_markers=r.inline_markers,
        conventions=[(glob, tag) for glob, tag in r.conventions.items() if tag],
        daily_usd=_number_text(b.daily_usd),
        monthly_usd=_number_text(b.monthly_usd),
        warn_at=_number_text(b.warn_at),
        budget_action=b.action,
        baseline_model=p.baseline_model,
        electricity_price=_number_text(p.electricity_price_per_kwh),
        privacy_escalation=settings.privacy.escalation,
        providers=[ProviderRow(n, c.kind, c.base_url, c.api_key) for n, c in settings.providers.items()],
    )


def _number_text(value: float) -> str:
    return f"{value:g}"


def _tags(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.replace(";", ",").split(",") if t.strip())


def _parse_float(key: str, text: str, problems: list[str]) -> float | None:
    try:
        return float(text.strip().removeprefix("$") or "0")
    except ValueError:
        problems.append(f"{key}: '{text}' is not a number")
        return None


def _parse_int(key: str, text: str, problems: list[str]) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        problems.append(f"{key}: '{text}' is not a whole number")
        return None


def _set(changes: dict[str, Any], path: KeyPath, value: Any) -> None:
    node = changes
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def changes_from_form(form: FormValues, current: Settings, shipped_conventions: Mapping[str, str]) -> FormChanges:
    changes: dict[str, Any] = {}
    removals: list[KeyPath] = []
    problems: list[str] = []

    def put(path: KeyPath, value: Any, now: Any) -> None:
        if value is not None and value != now:
            _set(changes, path, value)

    put(("server", "port"), _parse_int("server.port", form.port, problems), current.server.port)
    r = current.routing
    for key in ("local_model", "cloud_model", "heavy_model", "ui_model"):
        put(("routing", key), getattr(form, key).strip(), getattr(r, key))
    put(("routing", "heavy_tags"), list(_tags(form.heavy_tags)), list(r.heavy_tags))
    put(("routing", "ui_tags"), list(_tags(form.ui_tags)), list(r.ui_tags))
    put(("routing", "inline_markers"), form.inline_markers, r.inline_markers)
    wanted = {glob.strip(): tag.strip() for glob, tag in form.conventions if glob.strip()}
    for glob, tag in wanted.items():
        put(("routing", "conventions", glob), tag, r.conventions.get(glob))
    for glob, tag in r.conventions.items():
        if glob in wanted or not tag:
            continue
        # A shipped convention is switched off with ""; one the user added is deleted.
        if glob in shipped_conventions:
            _set(changes, ("routing", "conventions", glob), "")
        else:
            removals.append(("routing", "conventions", glob))
    b = current.budget
    put(("budget", "daily_usd"), _parse_float("budget.daily_usd", form.daily_usd, problems), b.daily_usd)
    put(("budget", "monthly_usd"), _parse_float("budget.monthly_usd", form.monthly_usd, problems), b.monthly_usd)
    put(("budget", "warn_at"), _parse_float("budget.warn_at", form.warn_at, problems), b.warn_at)
    put(("budget", "action"), form.budget_action, b.action)
    p = current.pricing
    put(("pricing", "baseline_model"), form.baseline_model.strip(), p.baseline_model)
    price = _parse_float("pricing.electricity_price_per_kwh", form.electricity_price, problems)
    put(("pricing", "electricity_price_per_kwh"), price, p.electricity_price_per_kwh)
    put(("privacy", "escalation"), form.privacy_escalation, current.privacy.escalation)
    _provider_changes(form.providers, current.providers, changes, removals, problems)
    return FormChanges(changes, removals, problems)


def _provider_changes(
    rows: Sequence[ProviderRow],
    current: Mapping[str, ProviderSettings],
    changes: dict[str, Any],
    removals: list[KeyPath],
    problems: list[str],
) -> None:
    names = [row.name.strip() for row in rows]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"providers.{name}: two providers have this name")
    for row in rows:
        name = row.name.strip()
        if not name:
            problems.append("providers: a provider needs a name")
            continue
        now = current.get(name)
        entry: dict[str, Any] = {}
        if now is None or row.kind != now.kind:
            entry["kind"] = row.kind
        if now is None or row.base_url.strip() != now.base_url:
            entry["base_url"] = row.base_url.strip()
        if entry:
            _set(changes, ("providers", name), entry)
    for name in current:
        if name not in names:
            removals.append(("providers", name))


def _new_user_file(path: Path, changes: Mapping[str, Any], removals: Iterable[KeyPath]) -> dict[str, Any]:
    user = read_toml(path) if path.exists() else {}
    new_user = merge(user, dict(changes))
    for key_path in removals:
        node: Any = new_user
        for part in key_path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(key_path[-1], None)
    return new_user


def apply_user_changes(path: Path, changes: Mapping[str, Any], removals: Iterable[KeyPath] = ()) -> Settings:
    """The form's changes and removals, through the one settings writer (it keeps the user's
    comments and layout); nothing is written when the result is invalid."""
    return update_user_file(path, changes, removals)


def check_user_changes(
    path: Path, changes: Mapping[str, Any], removals: Iterable[KeyPath] = (), typed_keys: Collection[str] = ()
) -> list[str]:
    """Every problem the changes would have, in one pass, writing nothing: the settings
    validation's, and each changed cloud model whose provider has no key (with the fix).
    `typed_keys`: providers whose key the dialog holds, to be stored on saving."""
    try:
        settings = validate(merge(shipped_defaults(), _new_user_file(path, changes, removals)))
    except SettingsError as exc:
        return list(exc.problems)
    routing = changes.get("routing", {})
    refs = [(key, ref) for key, ref in settings.routing.model_refs() if key.split("[")[0] in routing]
    return missing_keys(refs, settings.providers, typed_keys)


def problem_key(problem: str) -> str:
    """`routing.local_model: no provider named 'x'` → `routing.local_model` ('' when none is named)."""
    match = _KEY.match(problem)
    return re.sub(r"\[\d+\]", "", match.group(1)) if match else ""


def field_for(problem: str, fields: Iterable[str]) -> str | None:
    """The most specific form field whose key the problem's key starts with."""
    key = problem_key(problem)
    if not key:
        return None
    best = None
    for name in fields:
        if (key == name or key.startswith(name + ".")) and (best is None or len(name) > len(best)):
            best = name
    return best


def shipped_conventions() -> dict[str, str]:
    conventions = shipped_defaults().get("routing", {}).get("conventions", {})
    return dict(conventions) if isinstance(conventions, dict) else {}
