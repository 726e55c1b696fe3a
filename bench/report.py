"""Render a run's results (bench/run_all.py) as docs/performance.md with PNG plots beside it."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import STALL_S, pct

HYBRIDGE = "Hybridge"
HYBRIDGE_ANTHROPIC = "Hybridge (Anthropic API)"
HYBRIDGE_NO_LEDGER = "Hybridge, ledger off"
DIRECT = "direct"
LITELLM = "LiteLLM proxy"
CCR = "claude-code-router"
IDLE_SERVE = "hybridge serve (idle)"  # installed with runtime dependencies only: the footprint target
COLORS = {
    DIRECT: "#7f7f7f",
    HYBRIDGE: "#1f77b4",
    HYBRIDGE_NO_LEDGER: "#17becf",
    HYBRIDGE_ANTHROPIC: "#6baed6",
    LITELLM: "#d62728",
    CCR: "#ff7f0e",
}

# Why a target may be missed; printed under the table for each target this run missed.
# They state what profiling found (see the "Profile" section), not guesses.
NOTES = {
    "latency_p50": (
        "Added latency p50: Hybridge's own path (read and check the body, route, one upstream request, "
        "re-encode the answer) still takes a few hundred microseconds of CPU, spread thin over many "
        "steps (see *Profile* below), and one more process to wake than the direct path. The ledger's "
        "write happens after the answer, so at concurrency 1 it does not show here (the `Hybridge, "
        "ledger off` row is no faster); it shows under load, in requests/s and throughput."
    ),
    "latency_p99": (
        "Added latency p99: the tail follows the machine's load: a process that is runnable waits for "
        "one of two shared cores, and the routed path has one more process to wake than the direct one."
    ),
    "ttft_p50": (
        "Added TTFT p50: as for latency p50; the first chunk takes the same path as a whole answer, "
        "plus the stream's own start (its response head written before the first chunk, the first "
        "read type-checked before anything is forwarded)."
    ),
    "ttft_p99": "Added TTFT p99: as for latency p99, the tail follows the machine's load.",
    "peers": "Lower than every peer: a peer that beat Hybridge on a figure in this run is named in the table.",
    "throughput": (
        "Throughput at 0 ms pace: the synthetic upstream writes chunks back to back (over 100,000 a "
        "second, hundreds of times any model's decode speed) and the client does almost nothing per "
        "chunk; an OpenAI client's stream now passes through as bytes (a write per socket read, the "
        "model name rewritten by one regex pass), so what is left is one more process on the two "
        "shared cores. At paced rates the stream is not slowed: see the 20 ms gap column, the "
        "256-stream run and the real llama-server's decode ratio."
    ),
    "ledger_cost": (
        "Ledger on vs off: at concurrency 32 the router is bound by its event loop's thread (the "
        "machine stays about a quarter idle). The writer's ~13 µs of CPU a row (the INSERT, the batch "
        "sums, pricing) slows that thread about as much whether it holds the GIL or not: runs that "
        "add work to the writer, with the GIL and without, show it (bench/profile_notes.md, fifth "
        "pass). With the router pinned to one core the writer runs only while the loop waits and the "
        "ratio was 0.99, but a desktop router cannot pin its users' cores. What is left is less "
        "writer CPU per row (skipping the batch sums saved 2.2 µs of ~13, but only a headless router "
        "nobody reads figures from could skip them)."
    ),
    "rate_32": (
        "Requests/s at concurrency 32: bounded by one Python process's CPU per request (see *CPU per "
        "chunk and per request*) on cores shared with the client, the upstream and other work."
    ),
    "one_for_one": "Chunks one for one: a stream lost or merged chunks; see the chunk counts in the table.",
    "streams_256": (
        f"256 streams: an error is a failed request or a stream that ended badly; a stall is a gap of "
        f"{STALL_S:.0f} s or more between two chunks of one stream. 256 streams at 20 ms are 12,800 "
        "chunks a second through one Python process on two shared cores: when the machine is busy, "
        "chunks queue and arrive in bursts (gap p50 near 0, p99 up)."
    ),
    "classify": (
        "Classify + decide: bench/bench_classify.py's scenarios (kept by the routing work); the worst is "
        "the one named in the table. On two shared cores the p99 of a few-µs function also catches "
        "preemptions by other processes."
    ),
    "idle_rss": (
        "Idle RSS: most of it is Python, uvloop/uvicorn, Starlette, httpx/httpcore, pydantic (settings), "
        "SQLite (the ledger) and psutil (the inventory); TLS (the CA bundle) loads on the first https "
        "request and NVML only where the NVIDIA driver is."
    ),
}


@dataclass
class Target:
    key: str
    label: str
    met: bool | None  # None: could not be measured
    value: str
    goal: str


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f} ms"


def _signed_ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:+.2f} ms"


def _added(values: dict[str, list[float]], name: str, q: float) -> float:
    if name not in values or DIRECT not in values:
        return float("nan")
    return pct(values[name], q) - pct(values[DIRECT], q)


def _peer_pairs(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(Hybridge endpoint, peer) pairs to compare; each peer against the same API first."""
    names = [t["name"] for t in results["targets"]]
    pairs = []
    if LITELLM in names:
        pairs.append((HYBRIDGE, LITELLM))
    if CCR in names:
        pairs += [(HYBRIDGE_ANTHROPIC, CCR), (HYBRIDGE, CCR)]
    return pairs


def _concurrent(results: dict[str, Any], name: str) -> dict[str, Any]:
    runs = [r for r in results.get("concurrent", []) if r["target"] == name]
    gaps = [g for r in runs for g in r["gaps"]]
    return {
        "runs": len(runs),
        "streams": sum(r["streams"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "wrong": sum(r["wrong_counts"] for r in runs),
        "stalls": sum(r["stalls"] for r in runs),
        "gap_p50": pct(gaps, 0.5) if gaps else float("nan"),
        "gap_p99": pct(gaps, 0.99) if gaps else float("nan"),
        "gap_max": max(gaps) if gaps else float("nan"),
        "samples": [e for r in runs for e in r["error_samples"]][:2],
    }


def _rate(results: dict[str, Any], name: str) -> tuple[float, int]:
    runs = [r for r in results.get("rate", []) if r["target"] == name]
    return (statistics.median(r["per_second"] for r in runs) if runs else float("nan")), sum(r["errors"] for r in runs)


def _throughput(results: dict[str, Any], name: str) -> float:
    rates = results.get("throughput", {}).get("rates", {}).get(name, [])
    return statistics.median(rates) if rates else float("nan")


def _one_for_one(results: dict[str, Any], name: str) -> bool:
    n = results.get("throughput_chunks")
    counts = results.get("throughput", {}).get("counts", {}).get(name, [])
    paced = results.get("paced", {}).get("counts", {}).get(name, [])
    conc = _concurrent(results, name)
    return all(c == n for c in counts) and all(c == 100 for c in paced) and conc["wrong"] == 0


def targets(results: dict[str, Any]) -> list[Target]:
    lat, ttft = results["latency"], results["ttft"]
    out = [
        Target("latency_p50", "added latency p50 (no streaming, concurrency 1)", None, "", "≤ 0.5 ms"),
        Target("latency_p99", "added latency p99", None, "", "≤ 2 ms"),
        Target("ttft_p50", "added time to first token p50", None, "", "≤ 0.5 ms"),
        Target("ttft_p99", "added time to first token p99", None, "", "≤ 3 ms"),
    ]
    for target, values, q, goal in (
        (out[0], lat, 0.5, 0.0005),
        (out[1], lat, 0.99, 0.002),
        (out[2], ttft, 0.5, 0.0005),
        (out[3], ttft, 0.99, 0.003),
    ):
        added = _added(values, HYBRIDGE, q)
        target.value = _signed_ms(added)
        target.met = None if math.isnan(added) else added <= goal

    beaten = []
    compared = 0
    for ours, peer in _peer_pairs(results):
        for label, values in (("latency", lat), ("TTFT", ttft)):
            for q in (0.5, 0.99):
                compared += 1
                if not _added(values, ours, q) < _added(values, peer, q):
                    beaten.append(f"{peer} beat {ours} on {label} p{int(q * 100)}")
    out.append(
        Target(
            "peers",
            "added latency and TTFT lower than every peer's",
            None if not compared else not beaten,
            "; ".join(beaten) if beaten else f"lower in all {compared} comparisons",
            "every peer",
        )
    )
    direct_rate = _throughput(results, DIRECT)
    ratio = _throughput(results, HYBRIDGE) / direct_rate if direct_rate else float("nan")
    out.append(
        Target(
            "throughput",
            "throughput at 0 ms pace vs direct",
            None if math.isnan(ratio) else ratio >= 0.9,
            f"{ratio:.2f}×",
            "≥ 0.9× (ledger on)",
        )
    )
    on, off = _throughput(results, HYBRIDGE), _throughput(results, HYBRIDGE_NO_LEDGER)
    rate_on, rate_off = _rate(results, HYBRIDGE)[0], _rate(results, HYBRIDGE_NO_LEDGER)[0]
    ledger = [on / off if off else float("nan"), rate_on / rate_off if rate_off else float("nan")]
    out.append(
        Target(
            "ledger_cost",
            "ledger on vs ledger off (chunks/s, requests/s)",
            None if any(math.isnan(r) for r in ledger) else all(r >= 0.95 for r in ledger),
            f"{ledger[0]:.2f}×, {ledger[1]:.2f}×",
            "≥ 0.95× both",
        )
    )
    direct_rps = _rate(results, DIRECT)[0]
    out.append(
        Target(
            "rate_32",
            "requests/s at concurrency 32 (ledger on)",
            None if math.isnan(rate_on) else rate_on >= 2 * 1582,
            f"{rate_on:,.0f} ({rate_on / direct_rps:.2f}× direct's {direct_rps:,.0f})"
            if direct_rps
            else f"{rate_on:,.0f}",
            "≥ 3,164 (2× 1,582)",
        )
    )
    ok = _one_for_one(results, HYBRIDGE)
    out.append(Target("one_for_one", "chunks passed one for one", ok, "yes" if ok else "no", "every stream"))
    conc = _concurrent(results, HYBRIDGE)
    out.append(
        Target(
            "streams_256",
            f"{results['meta']['args']['streams']} concurrent streams at 20 ms pace",
            None if not conc["runs"] else conc["errors"] == 0 and conc["stalls"] == 0,
            f"{conc['errors']} errors, {conc['stalls']} stalls in {conc['streams']} streams",
            "0 errors, 0 stalls",
        )
    )
    worst = max((c["p99_us"] for c in results.get("classify", {}).values() if c["target"]), default=float("nan"))
    out.append(
        Target(
            "classify",
            "classify + decide p99 (worst OpenCode-shaped scenario)",
            None if math.isnan(worst) else worst <= 50,
            f"{worst:.1f} µs",
            "≤ 50 µs",
        )
    )
    idle = next((i for i in results.get("idle", []) if i["name"] == IDLE_SERVE), None)
    out.append(
        Target(
            "idle_rss",
            "idle `hybridge serve` RSS",
            None if idle is None else idle["rss_end_mb"] <= 60,
            "n/a" if idle is None else f"{idle['rss_end_mb']:.1f} MB",
            "≤ 60 MB",
        )
    )
    return out


def _cpu_table(results: dict[str, Any]) -> list[str]:
    """CPU of the router's own process per streamed chunk and per request (median of runs)."""
    rows = results.get("cpu") or []
    if not rows:
        return []
    lines = [
        "| router process | CPU per streamed chunk (0 ms pace) | CPU per non-streaming request |",
        "|---|---|---|",
    ]
    for row in rows:
        chunk = statistics.median(row["per_chunk_us"]) if row["per_chunk_us"] else float("nan")
        request = statistics.median(row["per_request_ms"]) if row["per_request_ms"] else float("nan")
        lines.append(f"| {row['target']} | {chunk:.2f} µs | {request:.3f} ms |")
    return lines


def _tick(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def _request_table(results: dict[str, Any]) -> list[str]:
    lat, ttft = results["latency"], results["ttft"]
    paced = results["paced"]["gaps"]
    lines = [
        "| path | API | latency p50 | p99 | added p50 | added p99 | TTFT p50 | p99 | added p50 | added p99 "
        "| chunk gap at 20 ms (mean) | added |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    direct_gap = statistics.mean(paced[DIRECT]) if paced.get(DIRECT) else float("nan")
    for t in results["targets"]:
        name = t["name"]
        gap = statistics.mean(paced[name]) if paced.get(name) else float("nan")
        lines.append(
            f"| {name} | {t['api']} | {_ms(pct(lat[name], 0.5))} | {_ms(pct(lat[name], 0.99))} | "
            f"{_signed_ms(_added(lat, name, 0.5))} | {_signed_ms(_added(lat, name, 0.99))} | "
            f"{_ms(pct(ttft[name], 0.5))} | {_ms(pct(ttft[name], 0.99))} | "
            f"{_signed_ms(_added(ttft, name, 0.5))} | {_signed_ms(_added(ttft, name, 0.99))} | "
            f"{_ms(gap)} | {_signed_ms(gap - direct_gap)} |"
        )
    return lines


def _cold_table(results: dict[str, Any]) -> list[str]:
    """The same requests after every process idled (runs from before this figure have none)."""
    if "latency_cold" not in results:
        return []
    lat, ttft = results["latency_cold"], results["ttft_cold"]
    lines = [
        "| path | API | latency p50 | added p50 | TTFT p50 | added p50 |",
        "|---|---|---|---|---|---|",
    ]
    for t in results["targets"]:
        name = t["name"]
        lines.append(
            f"| {name} | {t['api']} | {_ms(pct(lat.get(name, []), 0.5))} | {_signed_ms(_added(lat, name, 0.5))} | "
            f"{_ms(pct(ttft.get(name, []), 0.5))} | {_signed_ms(_added(ttft, name, 0.5))} |"
        )
    return lines


def _load_table(results: dict[str, Any]) -> list[str]:
    n = results["meta"]["args"]["streams"]
    lines = [
        f"| path | chunks/s at 0 ms pace | vs direct | chunks one for one | {n} streams: errors | stalls "
        "| gap p50 | gap p99 | gap max | requests/s at concurrency 32 | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    direct_rate = _throughput(results, DIRECT)
    for t in results["targets"]:
        name = t["name"]
        rate = _throughput(results, name)
        conc = _concurrent(results, name)
        rps, rps_errors = _rate(results, name)
        lines.append(
            f"| {name} | {rate:,.0f} | {rate / direct_rate:.2f}× | {'yes' if _one_for_one(results, name) else 'no'} | "
            f"{conc['errors']} | {conc['stalls']} | {_ms(conc['gap_p50'])} | {_ms(conc['gap_p99'])} | "
            f"{_ms(conc['gap_max'])} | {rps:,.0f} | {rps_errors} |"
        )
    samples = [(t["name"], _concurrent(results, t["name"])["samples"]) for t in results["targets"]]
    for name, errors in samples:
        if errors:
            lines.append(f"\nFirst errors via {name}: " + "; ".join(f"`{e}`" for e in errors))
    return lines


# -- plots -------------------------------------------------------------------------------


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, imported when a plot is drawn (the
    `bench` extra; run_all installs it when a run starts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path.name


def _plot_added(results: dict[str, Any], path: Path) -> str:
    names = [t["name"] for t in results["targets"] if t["name"] != DIRECT]
    figures = [
        ("latency p50", "latency", 0.5),
        ("latency p99", "latency", 0.99),
        ("TTFT p50", "ttft", 0.5),
        ("TTFT p99", "ttft", 0.99),
    ]
    fig, ax = _pyplot().subplots(figsize=(9, 5.2))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [max(_added(results[key], name, q) * 1000, 0.01) for _, key, q in figures]
        bars = ax.bar([x + i * width for x in range(len(figures))], values, width, label=name, color=COLORS.get(name))
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7, rotation=90, padding=2)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(figures))], [f[0] for f in figures])
    ax.set_yscale("log")
    ax.set_ylabel("added over direct (ms, log scale)")
    ax.axhline(0.5, color="green", linestyle=":", linewidth=1, label="p50 target 0.5 ms")
    ax.axhline(3, color="olive", linestyle=":", linewidth=1, label="p99 target 3 ms")
    ax.set_title("What each proxy adds (same upstream, interleaved)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, frameon=False)
    return _save(fig, path)


def _plot_cdf(series: dict[str, list[float]], path: Path, title: str, xlabel: str, mark: float | None = None) -> str:
    fig, ax = _pyplot().subplots(figsize=(8, 4.2))
    for name, values in series.items():
        if not values:
            continue
        ordered = sorted(v * 1000 for v in values)
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.plot(ordered, ys, label=name, color=COLORS.get(name))
    if mark is not None:
        ax.axvline(mark, color="black", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of samples")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _plot_bars(values: dict[str, float], path: Path, title: str, ylabel: str, fmt: Callable[[float], str]) -> str:
    fig, ax = _pyplot().subplots(figsize=(8, 4))
    names = list(values)
    bars = ax.bar(names, [values[n] for n in names], color=[COLORS.get(n, "#9467bd") for n in names])
    ax.bar_label(bars, labels=[fmt(values[n]) for n in names], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", labelsize=8, rotation=12)
    return _save(fig, path)


def _plot_soak(soak: dict[str, Any], path: Path) -> str:
    fig, ax = _pyplot().subplots(figsize=(8, 3.8))
    xs = [t / 60 for t, _ in soak["samples"]]
    ax.plot(xs, [mb for _, mb in soak["samples"]], color=COLORS[HYBRIDGE])
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"`hybridge serve` RSS during the soak ({sum(soak['requests'].values()):,} mixed requests)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plots(results: dict[str, Any], folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "added": _plot_added(results, folder / "added_latency.png"),
        "latency_cdf": _plot_cdf(
            results["latency"],
            folder / "latency_cdf.png",
            "Non-streaming request time, concurrency 1",
            "ms (log scale)",
        ),
        "throughput": _plot_bars(
            {t["name"]: _throughput(results, t["name"]) for t in results["targets"]},
            folder / "throughput.png",
            f"One stream of {results['throughput_chunks']} chunks at 0 ms pace",
            "chunks/s (median)",
            lambda v: f"{v:,.0f}",
        ),
        "gaps_256": _plot_cdf(
            {
                t["name"]: [g for r in results["concurrent"] if r["target"] == t["name"] for g in r["gaps"]]
                for t in results["targets"]
            },
            folder / "concurrent_gaps.png",
            f"Gaps between chunks, {results['meta']['args']['streams']} concurrent streams at 20 ms pace",
            "ms between chunks (log scale)",
            mark=20,
        ),
        "rate": _plot_bars(
            {t["name"]: _rate(results, t["name"])[0] for t in results["targets"]},
            folder / "requests_per_second.png",
            "Non-streaming requests/s at concurrency 32",
            "requests/s (median)",
            lambda v: f"{v:,.0f}",
        ),
        "idle": _plot_bars(
            {i["name"]: i["rss_end_mb"] for i in results.get("idle", [])},
            folder / "idle_rss.png",
            f"Idle resident memory after {results['meta']['args']['idle_seconds']:.0f} s (process tree)",
            "MB",
            lambda v: f"{v:.0f} MB",
        ),
    }
    if results.get("soak", {}).get("samples"):
        made["soak"] = _plot_soak(results["soak"], folder / "soak_rss.png")
    return made


# -- the document --------------------------------------------------------------------------


def _conditions(meta: dict[str, Any]) -> list[str]:
    m = meta["machine"]
    load = ", ".join(f"{x:.1f}" for x in meta["load_start"])
    load_end = ", ".join(f"{x:.1f}" for x in meta.get("load_end", ()))
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    lines = [
        f"- Run: {meta['started']}, {meta.get('duration_s', 0) // 60} min; {versions}.",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, Python {m['python']}.",
        f"- Load average (1/5/15 min) at the start: {load}; at the end: {load_end}. The machine is shared: "
        "other processes were running, so absolute times carry their noise; every path was measured "
        "interleaved in the same run, which is what the comparisons rest on.",
    ]
    for name, why in meta.get("skipped", {}).items():
        lines.append(f"- {name}: {why}.")
    return lines


def _method(results: dict[str, Any]) -> list[str]:
    a = results["meta"]["args"]
    return [
        "All load stays on loopback. One client process (bench/wire.py: keep-alive HTTP/1.1 on uvloop "
        "and httptools, which timestamps each body piece and parses events only afterwards) drives "
        "every path, so its own cost is the same for all and cancels out of the *added* figures.",
        "",
        "- **Upstream**: bench/synthetic_upstream.py, an OpenAI chat-completions server; model `synth` "
        "streams as fast as it can (0 ms pace), `synth-p20` one chunk every 20 ms; `max_tokens` is the "
        "number of chunks.",
        "- **Paths**: `direct` to the upstream; `Hybridge` (`hybridge serve`, its default settings plus "
        "the upstream as an `openai-local` provider, ledger on, in a temporary file); `LiteLLM proxy` "
        "(`litellm[proxy]` in its own venv, price-map download off with "
        "`LITELLM_LOCAL_MODEL_COST_MAP=True`, a master key as it requires); `Hybridge, ledger off` (the "
        "same with `ledger.enabled = false`: the request path without the accounting); `Hybridge (Anthropic API)` "
        "and `claude-code-router`, both taking Anthropic Messages requests and calling the same OpenAI "
        "upstream. claude-code-router fronts an OpenAI upstream fine (a provider with `api_base_url` "
        "…/v1/chat/completions), but serves only Anthropic's `/v1/messages`: it is compared with "
        "Hybridge's own `/v1/messages`, both translating.",
        f"- **Latency / TTFT**: {a['requests']} requests per path after 30 warm-up ones, the paths "
        "taking turns request by request (in a new seeded-random order every round, so work a server "
        "does after answering, such as a peer's logging or a ledger write, lands on every other path "
        "alike; a rotated order kept who follows whom)"
        + (
            "; each measured request follows an unmeasured one on the same path, so every path, direct "
            "included, is measured warm (the upstream serves every path and stayed warm, while a router "
            "idled through the other paths' turns: its added latency then depended on which peers took "
            "part). "
            if "cold_idle_s" in results
            else ". "
        )
        + "Latency is a 16-token non-streaming answer, TTFT the first content chunk of a 4-chunk stream. "
        "*Added* = the path's percentile minus direct's."
        + (" The cold figures take the same requests after every process idled." if "cold_idle_s" in results else ""),
        f"- **Throughput**: {a['rounds']} streams of {a['chunks']} chunks per path at 0 ms pace; chunks/s = "
        "content chunks / request time. **Gap**: 3 streams of 100 chunks at 20 ms pace.",
        f"- **Concurrency**: {a['streams']} streams of {a['stream_chunks']} chunks at 20 ms pace at once "
        f"({a['concurrent_rounds']} round(s) per path), each on its own connection; requests/s: 32 "
        f"keep-alive clients for {a['rate_seconds']:.0f} s per path and round, "
        f"{a.get('rate_rounds', a['concurrent_rounds'])} rounds in a new seeded-random order each (median).",
        "- **Decode**: the real llama-server (Gemma 3 270M, CPU) streaming 96 tokens, direct and "
        "through Hybridge, 5 times each interleaved; tokens/s between the first and last token (median).",
        "- **Classify + decide**: bench/bench_classify.py's OpenCode-sized requests, in-process.",
        f"- **Footprint**: a fresh `hybridge serve` installed as users get it (runtime dependencies only, "
        f"in ~/.cache/hybridge/bench-runtime-venv: the target), one from the project venv (whose test "
        f"extras bring rich, which makes httpx load its CLI), the tray app (`hybridge` on Qt's offscreen "
        f"platform) and the peers, idle for {a['idle_seconds']:.0f} s after 5 s to settle (RSS of the "
        f"process tree, CPU of one core); the soak sends mixed requests (whole and streamed answers, "
        f"Anthropic streams, bad JSON, unknown models, `/v1/models`, clients leaving mid-stream) "
        f"from 4 clients through a fresh `hybridge serve` for {a['soak_seconds'] / 60:.0f} min; growth "
        f"is RSS at the end minus RSS after the first minute (or tenth of the run).",
    ]


def document(results: dict[str, Any], images: dict[str, str], folder: str) -> str:
    ts = targets(results)
    lines = [
        "# Performance",
        "",
        "Generated by `.venv/bin/python -m bench.run_all` (do not edit by hand: re-run it). "
        "What a router in the path costs, measured against a direct connection and the peers we can "
        "run here, in one run on one machine.",
        "",
        "## Conditions",
        "",
        *_conditions(results["meta"]),
        "",
        "## Targets",
        "",
        "| target | goal | this run | |",
        "|---|---|---|---|",
        *(f"| {t.label} | {t.goal} | {t.value} | {_tick(t.met)} |" for t in ts),
        "",
    ]
    missed = [t for t in ts if t.met is False]
    if missed:
        lines += ["### Why targets were missed", ""]
        lines += [f"- {NOTES.get(t.key, t.label)}" for t in missed]
        lines.append("")
    lines += [
        "## Requests, one at a time",
        "",
        *_request_table(results),
        "",
        f"![added latency]({folder}/{images['added']})",
        "",
        f"![latency CDF]({folder}/{images['latency_cdf']})",
        "",
    ]
    cold = _cold_table(results)
    if cold:
        idle_ms = results["cold_idle_s"] * 1000
        lines += [
            f"### After {idle_ms:.0f} ms idle",
            "",
            f"The same requests ({results['meta']['args']['cold_requests']} per path), each after every",
            f"process idled {idle_ms:.0f} ms: how an agent's request",
            "finds the router when it comes seconds after the last one. Not a target; on this machine a",
            "process woken after 20 ms or more of idle runs its request about half a millisecond slower,",
            "and a routed request has one such process more than a direct one (bench/profile_notes.md).",
            "",
            *cold,
            "",
        ]
    lines += [
        "## Streams and load",
        "",
        *_load_table(results),
        "",
        f"![throughput]({folder}/{images['throughput']})",
        "",
        f"![gaps at 256 streams]({folder}/{images['gaps_256']})",
        "",
        f"![requests per second]({folder}/{images['rate']})",
        "",
    ]
    cpu = _cpu_table(results)
    if cpu:
        lines += [
            "## CPU per chunk and per request",
            "",
            "User + system CPU time of the `hybridge serve` process (not the client's or the upstream's;",
            "its threads' run time from Linux schedstat, in nanoseconds) over streams of the throughput",
            "run's length and runs of non-streaming requests, one at a time, each figure taken after the",
            "process went quiet again (so the ledger's write counts). Median of the rounds. For a figure",
            "that load does not move at all, `bench/hot_path.py --instructions` counts instructions.",
            "",
            *cpu,
            "",
        ]
    decode = results.get("decode")
    if decode and decode["direct"] and decode["Hybridge"]:
        d, h = statistics.median(decode["direct"]), statistics.median(decode["Hybridge"])
        lines += [
            "## Real model: llama-server decode speed",
            "",
            "| direct (median) | through Hybridge (median) | ratio | every stream, direct | every stream, Hybridge |",
            "|---|---|---|---|---|",
            f"| {d:.1f} tok/s | {h:.1f} tok/s | {h / d:.3f} | "
            f"{', '.join(f'{x:.1f}' for x in decode['direct'])} | "
            f"{', '.join(f'{x:.1f}' for x in decode['Hybridge'])} |",
            "",
            "The model runs on the same two shared cores as everything else (and as other llama-servers "
            "when the machine is busy), so its own speed varies from stream to stream far more than "
            "anything a router adds: compare the streams one by one. What Hybridge adds to each chunk "
            "is the 20 ms gap column above.",
            "",
        ]
    if results.get("classify"):
        lines += [
            "## Classify + decide (in-process)",
            "",
            "bench/bench_classify.py: 5 rounds per scenario, the best round shown. Only requests as the "
            "server passes them (with `content-length`) count toward the target; the last row is a "
            "chunked upload, where routing walks the whole history to estimate the prompt.",
            "",
            "| scenario | p50 | p99 | counts toward the target |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {c['p50_us']:.1f} µs | {c['p99_us']:.1f} µs | {'yes' if c['target'] else 'no'} |"
            for name, c in results["classify"].items()
        ]
        lines.append("")
    lines += [
        "## Footprint",
        "",
        "| process (idle) | RSS at start | RSS at end | RSS max | CPU |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {i['name']} | {i['rss_start_mb']:.1f} MB | {i['rss_end_mb']:.1f} MB | {i['rss_max_mb']:.1f} MB "
        f"| {i['cpu_percent']:.2f} % |"
        for i in results.get("idle", [])
    ]
    lines += ["", f"![idle RSS]({folder}/{images['idle']})", ""]
    soak = results.get("soak")
    if soak and soak.get("samples"):
        total = sum(soak["requests"].values())
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(soak["requests"].items()))
        after = [mb for t, mb in soak["samples"] if t >= min(60.0, soak["seconds"] / 10)]
        half = [mb for t, mb in soak["samples"] if t >= soak["seconds"] / 2]
        lines += [
            f"Soak: {total:,} requests in {soak['seconds'] / 60:.1f} min ({kinds}); "
            f"{soak['unexpected']} answers other than expected. RSS after warm-up "
            f"{after[0] if after else float('nan'):.1f} MB, at the end {soak['samples'][-1][1]:.1f} MB: "
            f"growth {soak['growth_mb']:+.1f} MB, of which {soak['samples'][-1][1] - half[0]:+.1f} MB in the "
            "second half (caches filling level off; a leak would keep climbing).",
            "",
            f"![soak RSS]({folder}/{images['soak']})",
            "",
        ]
    lines += ["## Method", "", *_method(results), ""]
    # The agent-session benchmark (model loads, prompt tokens, wall time against a direct
    # Ollama client) runs minutes of real model work, so it has its own page.
    lines += ["## Agent sessions", "", "See [sessions.md](sessions.md) (`bench/bench_sessions.py`).", ""]
    profile = Path(__file__).with_name("profile_notes.md")
    if profile.exists():
        lines += [profile.read_text().strip(), ""]
    return "\n".join(lines)


RAW_SAMPLES = ("latency", "ttft", "latency_cold", "ttft_cold", "throughput", "paced", "concurrent", "rate", "soak")


def _compact(results: dict[str, Any]) -> dict[str, Any]:
    """The results without raw samples (kept small enough to commit)."""
    keep = {k: v for k, v in results.items() if k not in RAW_SAMPLES}
    keep["targets_met"] = {t.key: {"value": t.value, "met": t.met} for t in targets(results)}
    keep["per_path"] = {
        t["name"]: {
            "latency_p50_ms": pct(results["latency"][t["name"]], 0.5) * 1000,
            "latency_p99_ms": pct(results["latency"][t["name"]], 0.99) * 1000,
            "ttft_p50_ms": pct(results["ttft"][t["name"]], 0.5) * 1000,
            "ttft_p99_ms": pct(results["ttft"][t["name"]], 0.99) * 1000,
            **{
                f"{figure}_cold_p50_ms": pct(results[f"{figure}_cold"].get(t["name"], []), 0.5) * 1000
                for figure in ("latency", "ttft")
                if f"{figure}_cold" in results
            },
            "chunks_per_s": _throughput(results, t["name"]),
            "requests_per_s_c32": _rate(results, t["name"])[0],
            "concurrent": {k: v for k, v in _concurrent(results, t["name"]).items() if k != "samples"},
        }
        for t in results["targets"]
    }
    if "soak" in results:
        keep["soak"] = {k: v for k, v in results["soak"].items() if k != "samples"}
    return keep


def write(results: dict[str, Any], out: Path) -> Path:
    folder = out.with_suffix("")  # docs/performance/ beside docs/performance.md
    images = plots(results, folder)
    out.write_text(document(results, images, folder.name) + "\n")
    (folder / "results.json").write_text(json.dumps(_compact(results), indent=1, default=str) + "\n")
    return out


def summary(results: dict[str, Any]) -> str:
    return "\n".join(f"{t.label}: {t.value} (goal {t.goal}) — {_tick(t.met)}" for t in targets(results))
