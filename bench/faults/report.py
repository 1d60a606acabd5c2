"""A trial's result as a few readable lines, and the summary table of a run."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

from checks import CHECK_NAMES

EXAMPLES = 3


def trial_lines(result: dict) -> list[str]:
    head = f"{result['kind']} seed {result['seed']}: {result['fault']}"
    if result.get("error"):
        return [head, f"    ERROR (no verdict): {result['error']}", f"    logs: {result['trial_dir']}"]
    load, outcomes = result["load"], result["outcomes"]
    answers = ", ".join(f"{k} x{v}" for k, v in sorted(load["answers"].items()))
    lines = [
        head,
        f"    load: {load['posts']} POSTs in {result['load_s']}s, {load['accepted']} accepted ({answers})",
        f"    fault: {'fired' if result['fired'] else 'DID NOT FIRE'} at {result['fault_started_s']}s, "
        f"over at {result['fault_ended_s']}s"
        + (f"; {'; '.join(n.split(' ', 1)[1] for n in result['notes'])}" if result["notes"] else ""),
        f"    intents: {_counts(outcomes['intents'])}",
        f"    positions: {_counts(outcomes['positions'])}; orders: {_counts(outcomes['orders'])}",
        "    quiet after "
        + (f"{result['quiescence_s']}s" if result["quiescence_s"] is not None else f"NEVER ({result['last_probe']})"),
    ]
    if result.get("setup_note"):
        lines.append(f"    setup: {result['setup_note']}")
    by_check = defaultdict(list)
    for finding in result["findings"]:
        by_check[(finding["violation"], finding["check"])].append(finding)
    for (violation, check), found in sorted(by_check.items(), key=lambda item: (not item[0][0], item[0][1])):
        label = "VIOLATION" if violation else "note"
        lines.append(
            f"    {label} {check} x{len(found)}: "
            + "; ".join(f"{f['subject']}: {f['detail']}" for f in found[:EXAMPLES])
            + (" ..." if len(found) > EXAMPLES else "")
        )
    if result["violations"]:
        lines.append(f"    logs: {result['trial_dir']}")
    return lines


def summary_table(results: list[dict]) -> str:
    """One row per fault kind: trials, violations per check, time to quiescence."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for result in results:
        by_kind[result["kind"]].append(result)
    rows = [
        "| fault kind | trials | fired | clean | violations by check (trials with it) | quiet p50 / p95 / max (s) "
        "| never quiet |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, trials in by_kind.items():
        rows.append(_row(kind, trials))
    rows.append(_row("**all**", results))
    return "\n".join(rows)


def _row(kind: str, trials: list[dict]) -> str:
    judged = [t for t in trials if t.get("violations") is not None]
    errors = len(trials) - len(judged)
    per_check = Counter(f["check"] for t in judged for f in t["findings"] if f["violation"])
    trials_per_check = Counter(check for t in judged for check in {f["check"] for f in t["findings"] if f["violation"]})
    checks = (
        ", ".join(
            f"{check} {per_check[check]} ({trials_per_check[check]} trials)"
            for check in CHECK_NAMES
            if per_check[check]
        )
        or "0"
    )
    times = [t["quiescence_s"] if t["quiescence_s"] is not None else math.inf for t in judged]
    never = sum(math.isinf(x) for x in times)
    clean = sum(t["violations"] == 0 for t in judged)
    return (
        f"| {kind} | {len(trials)}{f' ({errors} errored)' if errors else ''} | "
        f"{sum(bool(t.get('fired')) for t in judged)} | {clean} | {checks} | "
        f"{_seconds(percentile(times, 0.5))} / {_seconds(percentile(times, 0.95))} / "
        f"{_seconds(max(times, default=math.nan))} | {never} |"
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; a trial that never went quiet counts as infinitely slow."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "never" if math.isinf(value) else f"{value:.1f}"


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
