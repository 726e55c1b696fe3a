"""`hybridge stats`: what requests cost and saved, from the ledger (a table, CSV, or per tag)."""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import httpx

from router_core.commands.common import add_url_argument, find_router, load_settings
from router_core.ledger import reports
from router_core.ledger.baseline import describe
from router_core.ledger.entry import OLLAMA_CLOUD_NOTE
from router_core.ledger.schema import connect, ledger_path
from router_core.server.token import current_token
from router_core.settings import Settings

DASH = "—"


def money(value: float | None) -> str:
    return "unpriced" if value is None else f"{value:,.4f}"


def _count(n: int) -> str:
    return f"{n:,}"


def _requests(n: int) -> str:
    return f"{n:,} request" + ("" if n == 1 else "s")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right_from: int) -> str:
    """Columns padded to their widest cell; columns from `right_from` on align right."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [
            c.rjust(w) if i >= right_from else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _group_label(row: sqlite3.Row, by: reports.GroupBy) -> list[str]:
    if by == "model":
        model = f"{row['provider']}/{row['model']}" if row["provider"] else "(no model ran)"
        return [row["route"] or "none", model]
    if by == "day":
        return [row["day"]]
    return [row["route"] or "none"]


def _cost_cell(row: Any) -> str:
    """Spend of the group; "unpriced" when none of it could be priced."""
    if row["unpriced_cost"] and row["unpriced_cost"] == row["requests"]:
        return "unpriced"
    cell = money(row["spend_usd"])
    return cell + (f" +{row['unpriced_cost']} unpriced" if row["unpriced_cost"] else "")


def _savings_cells(row: Any) -> tuple[str, str]:
    if row["unpriced_requests"] == row["requests"]:
        return DASH, DASH
    return money(row["baseline_usd"]), money(row["savings_usd"])


def summary_text(
    conn: sqlite3.Connection, settings: Settings, since: float, since_text: str, by: reports.GroupBy
) -> str:
    rows = reports.grouped(conn, since, by)
    total = reports.totals(conn, since)
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(since)) if since else "the start"
    baselines = reports.baseline_models(conn, since)
    head = f"Hybridge ledger since {started} ({since_text})"
    if baselines:
        head += " · savings vs " + ", ".join(m if priced else f"{m} (unpriced)" for m, priced in baselines)
    if not total["requests"]:
        return head + "\nno requests recorded in this period"
    labels = {"model": ["route", "model"], "day": ["day"], "route": ["route"]}[by]
    headers = [*labels, "reqs", "input", "cache rd", "cache wr", "output", "cost $", "baseline $", "saved $"]
    body = []
    for row in [*rows, total]:
        label = _group_label(row, by) if row is not total else ["total", *[""] * (len(labels) - 1)]
        baseline, saved = _savings_cells(row)
        body.append(
            [
                *label,
                _count(row["requests"]),
                _count(row["input_tokens"]),
                _count(row["cache_read_tokens"]),
                _count(row["cache_write_tokens"]),
                _count(row["output_tokens"]),
                _cost_cell(row),
                baseline,
                saved,
            ]
        )
    notes = [describe(m) for m, _ in baselines]
    notes.append(_electricity_note(total))
    if total["subscription_requests"]:
        notes.append(
            f"{OLLAMA_CLOUD_NOTE}: {_requests(total['subscription_requests'])} on Ollama's servers "
            "(route cloud; no per-token cost, never counted as savings)"
        )
    unpriced = reports.unpriced_models(conn, since)
    if total["unpriced_requests"]:
        what = f" ({', '.join(unpriced)}; set [pricing.models] in config.toml)" if unpriced else ""
        notes.append(f"unpriced: {_requests(total['unpriced_requests'])}{what}, left out of cost, baseline and savings")
    outcomes = dict(
        conn.execute("SELECT outcome, COUNT(*) FROM requests WHERE started_at >= ? GROUP BY outcome", (since,))
    )
    if outcomes.get("cancelled"):
        notes.append(f"cancelled: {_requests(outcomes['cancelled'])} (usage: what arrived before the client left)")
    if outcomes.get("interrupted"):
        notes.append(f"interrupted: {_requests(outcomes['interrupted'])} (Hybridge stopped mid-answer; usage so far)")
    if outcomes.get("error"):
        notes.append(f"errors: {_requests(outcomes['error'])}")
    if outcomes.get("refused"):
        kinds = dict(
            conn.execute(
                "SELECT error_kind, COUNT(*) FROM requests WHERE started_at >= ? AND outcome = 'refused' "
                "GROUP BY error_kind ORDER BY COUNT(*) DESC",
                (since,),
            )
        )
        detail = ", ".join(f"{_REFUSAL_NAMES.get(k, k)} {n}" for k, n in kinds.items())
        notes.append(f"refused: {_requests(outcomes['refused'])} ({detail}); no model ran")
    table = render_table(headers, body, len(labels))
    return "\n".join([head, table, *[n for n in notes if n], *backends_text(conn, since)])


def backends_text(conn: sqlite3.Connection, since: float) -> list[str]:
    """Local answers per backend (tok/s each), when there is more than one backend or a pool."""
    figures = reports.backend_figures(conn, since)
    if len(figures) < 2 and not any(f.pools for f in figures):
        return []
    rows = [
        [
            f.provider,
            f.backend or DASH,
            f.pools or DASH,
            _count(f.requests),
            _count(f.output_tokens),
            f"{f.decode_tps:.1f}" if f.decode_tps else DASH,
            f"{f.ttft_s:.2f}" if f.ttft_s is not None else DASH,
            money(f.savings_usd),
        ]
        for f in figures
    ]
    headers = ["backend", "address", "pool", "answers", "output", "tok/s", "ttft s", "saved $"]
    return ["", "Local backends", render_table(headers, rows, 3)]


_REFUSAL_NAMES = {
    "privacy_refused": "blocked by privacy",
    "budget_refused": "budget spent",
    "not_found_error": "unknown model",
    "no_route": "no provider",
}


def _electricity_note(total: Any) -> str:
    if not total["local_requests"]:
        return ""
    if total["energy_estimated"]:
        return (
            f"electricity: {total['energy_wh']:.3f} Wh estimated from pricing.gpu_watts (GPU power not readable "
            f"here), ${total['energy_cost_usd']:.4f}, taken out of savings"
        )
    if total["electricity_unmeasured"]:
        return (
            f"electricity: not measured for {total['electricity_unmeasured']} of {total['local_requests']} local "
            "requests (no GPU power reading, pricing.gpu_watts unset), so savings leave it out"
        )
    return f"electricity: {total['energy_wh']:.3f} Wh, ${total['energy_cost_usd']:.4f}, taken out of savings"


def write_csv(conn: sqlite3.Connection, since: float, out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(["time", "request_id", *reports.REQUEST_COLUMNS[1:], "tags", "rating"])
    for r in reports.request_rows(conn, since):
        values = {k: r[k] for k in r.keys()}  # noqa: SIM118 (sqlite3.Row has no items())
        local = values["route"] == "local"
        if values["cost_usd"] is None:
            values["cost_usd"] = "unpriced"
        if values["baseline_cost_usd"] is None:
            values["baseline_cost_usd"] = "unpriced"
        if values["savings_usd"] is None:
            values["savings_usd"] = "unpriced"
        if local and values["energy_wh"] is None:
            values["energy_wh"] = values["energy_cost_usd"] = "not measured"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(values["started_at"]))
        writer.writerow(
            [stamp, values["request_id"], *(values[c] for c in reports.REQUEST_COLUMNS[1:]), values["tags"] or "",
             values["rating"] or ""]
        )  # fmt: skip


def tags_text(conn: sqlite3.Connection, settings: Settings, since: float) -> str:
    figures = reports.tag_figures(conn, since, settings.routing.conventions, settings.routing.heavy_tags)
    if not figures:
        return "no tagged requests in this period (tags come from x-hybridge-tags, #tag: markers and path conventions)"
    headers = ["tag", "path convention", "reqs", "local", "rated", "bad", "local bad", "escalate?"]
    rows = []
    for f in figures:
        local_bad = f"{f.local_bad}/{f.local_rated}" + (
            f" ({f.local_bad_rate:.0%})" if f.local_bad_rate is not None else ""
        )
        rows.append(
            [
                f.tag + (" (heavy)" if f.tag in settings.routing.heavy_tags else ""),
                ", ".join(f.conventions) or DASH,
                _count(f.requests),
                f"{f.local_share:.0%}",
                _count(f.rated),
                f"{f.bad_rate:.0%}" if f.bad_rate is not None else DASH,
                local_bad,
                "yes" if f.escalate else "",
            ]
        )
    text = render_table(headers, rows, 2)
    worth = [f for f in figures if f.escalate]
    if worth:
        text += "\nworth escalating:\n" + "\n".join(f"  {f.tag}: {f.why}" for f in worth)
    else:
        text += (
            f"\nno tag to escalate (one needs {reports.ESCALATE_MIN_RATINGS}+ rated local answers with "
            f"{reports.ESCALATE_BAD_RATE:.0%}+ rated bad; rate answers with `hybridge rate good|bad`)"
        )
    return text


def live_line(args: argparse.Namespace, settings: Settings) -> str | None:
    """Today's figures from the running router (found by --url or its runtime file)."""
    url, how = find_router(args, settings)
    if how != "--url" and not how.startswith("runtime file"):
        return None
    token = current_token(settings)
    try:
        response = httpx.get(
            url + "/hybridge/stats",
            headers={"authorization": f"Bearer {token}"} if token else {},
            timeout=3.0,
            trust_env=False,
        )
        data = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        data = None
    if not isinstance(data, dict):
        return f"live: no answer from the router at {url} ({how})"
    today = data.get("today", {})
    return (
        f"live: router at {url}: today {today.get('requests', 0)} requests, "
        f"blocked by privacy: {today.get('blocked_by_privacy', 0)}, refused: {today.get('refused_requests', 0)}, "
        f"{data.get('live', {}).get('active_streams', 0)} streaming now"
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    path = ledger_path(settings)
    if not path.exists():
        print(f"hybridge: nothing recorded yet (no ledger at {path})", file=sys.stderr)
        return 1
    since = reports.parse_since(args.since)
    if not args.csv:
        live = live_line(args, settings)
        if live:
            print(live)
    conn = connect(path)
    try:
        if args.csv:
            write_csv(conn, since, sys.stdout)
        elif args.tags:
            print(tags_text(conn, settings, since))
        else:
            print(summary_text(conn, settings, since, args.since, args.by))
    finally:
        conn.close()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("stats", help="what requests cost and saved (from the ledger)")
    parser.add_argument("--since", default="30d", help="today, month, all, 24h, 7d, 2w or YYYY-MM-DD (default 30d)")
    parser.add_argument("--by", choices=["model", "day", "route"], default="model", help="group rows (default model)")
    parser.add_argument("--csv", action="store_true", help="every request as CSV, with cost and savings columns")
    parser.add_argument("--tags", action="store_true", help="per tag: local share, bad ratings, tags worth escalating")
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    add_url_argument(parser)
    parser.set_defaults(func=run)
