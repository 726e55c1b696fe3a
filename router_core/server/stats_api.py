"""The ledger over HTTP: `GET /hybridge/stats` (JSON), `GET /metrics` (Prometheus text) and
`POST /hybridge/feedback` (rate a session's last response)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from router_core.errors import BadRequest, HybridgeError
from router_core.ledger.baseline import describe
from router_core.ledger.budget import BudgetState
from router_core.ledger.live import LiveSnapshot, PeriodFigures
from router_core.ledger.metrics import CONTENT_TYPE
from router_core.ledger.recorder import Ledger
from router_core.ledger.store import Rating
from router_core.server.errors import openai_error_response
from router_core.server.helpers import json_response, new_request_id, read_json
from router_core.server.services import LedgerReader
from router_core.types import JSON

FEEDBACK_LIMIT_BYTES = 4096
FEEDBACK_TIMEOUT_S = 10.0
RATINGS = ("good", "bad")


class LedgerOff(HybridgeError):
    status = 503
    kind = "ledger_unavailable"

    def __init__(self) -> None:
        super().__init__("the ledger is not recording (ledger.enabled is false, or its file could not be opened)")


def _ledger(runtime: LedgerReader) -> Ledger:
    if runtime.ledger is None:
        raise LedgerOff()
    return runtime.ledger


def _money(value: float) -> float:
    # Sub-cent precision, without float noise in the JSON.
    return round(value, 6)


def period_json(f: PeriodFigures) -> JSON:
    return {
        "period": f.period,
        "requests": f.requests,
        "local_requests": f.local_requests,
        "cloud_requests": f.cloud_requests,
        "spend_usd": _money(f.spend_usd),
        "baseline_usd": _money(f.baseline_usd),
        "savings_usd": _money(f.savings_usd),
        # Requests left out of spend, baseline and savings because a price is missing.
        "unpriced_requests": f.unpriced_requests,
        "electricity": (
            "not measured"
            if f.electricity_unmeasured
            else {"wh": round(f.energy_wh, 4), "usd": _money(f.energy_cost_usd), "estimated": bool(f.energy_estimated)}
        ),
        # Refused before any model ran (privacy mode's own count too); Ollama cloud requests.
        "refused_requests": f.refused_requests,
        "blocked_by_privacy": f.privacy_refused,
        "ollama_cloud_requests": f.subscription_requests,
    }


def budget_json(b: BudgetState) -> JSON:
    return {
        "exhausted": b.exhausted,
        "warning": b.warning,
        "action": b.action,
        "reason": b.reason,
        "day": {"spent_usd": _money(b.day_spent_usd), "cap_usd": b.day_cap_usd or None},
        "month": {"spent_usd": _money(b.month_spent_usd), "cap_usd": b.month_cap_usd or None},
    }


def stats_json(ledger: Ledger, live: LiveSnapshot, budget: BudgetState) -> JSON:
    return {
        "live": {
            "window_s": live.window_s,
            "tokens_per_second": round(live.tokens_per_second, 2),
            "local_tokens_per_second": round(live.local_tokens_per_second, 2),
            "cloud_tokens_per_second": round(live.cloud_tokens_per_second, 2),
            "active_streams": live.active_streams,
            "streams": [dataclasses.asdict(s) for s in live.streams],
            "ttft_last_s": live.ttft_last_s,
            "ttft_median_s": live.ttft_median_s,
        },
        "today": period_json(live.today),
        "month": period_json(live.month),
        "baseline_model": ledger.baseline_model,
        "baseline_priced": ledger.prices.lookup_ref(ledger.baseline_model) is not None,
        "baseline_method": describe(ledger.baseline_model),
        "electricity": (
            ("estimated" if ledger.meter.estimated else "measured") if live.electricity_measured else "not measured"
        ),
        "budget": budget_json(budget),
    }


def _parse_feedback(body: Any, header_session: str | None) -> tuple[Rating, str | None, str | None]:
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object like {"rating": "good", "session": "..."}')
    if body.get("rating") not in RATINGS:
        raise BadRequest('rating must be "good" or "bad"', param="rating")
    rating: Rating = "good" if body["rating"] == "good" else "bad"
    session = body.get("session", header_session)
    request_id = body.get("request_id")
    for name, value in (("session", session), ("request_id", request_id)):
        if value is not None and (not isinstance(value, str) or not value or len(value) > 200):
            raise BadRequest(f"{name} must be a non-empty string", param=name)
    return rating, session, request_id


def routes(runtime: LedgerReader) -> list[BaseRoute]:
    async def stats(request: Request) -> Response:
        try:
            ledger = _ledger(runtime)
        except HybridgeError as exc:
            return openai_error_response(exc, new_request_id())
        return json_response(stats_json(ledger, ledger.snapshot(), ledger.budget_state()))

    async def metrics(request: Request) -> Response:
        try:
            ledger = _ledger(runtime)
        except HybridgeError as exc:
            return openai_error_response(exc, new_request_id())
        return Response(ledger.metrics_text(), media_type=CONTENT_TYPE)

    async def feedback(request: Request) -> Response:
        request_id = new_request_id()
        try:
            ledger = _ledger(runtime)
            body = await read_json(request, FEEDBACK_LIMIT_BYTES)
            rating, session, target = _parse_feedback(body, request.headers.get("x-session-id"))
            future = ledger.rate(rating, session=session, request_id=target)
            rated = await asyncio.wait_for(asyncio.wrap_future(future), FEEDBACK_TIMEOUT_S)
            if rated is None:
                what = f"request {target}" if target else f"session {session}" if session else "any session"
                raise BadRequest(f"no answered request to rate for {what}", status=404)
        except HybridgeError as exc:
            return openai_error_response(exc, request_id)
        return json_response({"rated": rated, "rating": rating, "session": session})

    return [
        Route("/hybridge/stats", stats, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/hybridge/feedback", feedback, methods=["POST"]),
    ]
