"""Fault-injection trials: a steady webhook load on the whole system, one fault per trial, then every check.

Starts Kafka, a durable Postgres and the local Binance server once (bench/executor/system.py,
egis_localinfra), then runs each (fault kind, seed) as its own trial: a fresh database
and fresh processes of the four services, paper and Binance bots, opens and closes on
several symbols POSTed to the gateway while the fault is injected and undone, a wait
for quiescence, and the checks of checks.py over every POST's answer, the ledger, the
executor's records, the venues' order logs, the outboxes and the dead letters.

    uv run python bench/faults/run.py --seeds 10 --kinds all      every kind x seeds 1..10
    uv run python bench/faults/run.py --kind kill_at_point --seeds 12   every named point (one per seed)
    uv run python bench/faults/run.py --kind kill_at_point --seed 3   replay one trial
    uv run python bench/faults/run.py --list                       the kinds
    uv run python bench/faults/run.py --summarize a/results.json b/results.json   one table of both

The plan of a trial (its signals, the fault, its moment) depends on the kind and the
seed alone (schedule.py). Each trial's result.json, history.jsonl (every POST and its
answer) and the services' logs are kept under --out; results.json and summary.md
hold the run. Exit status: 0 when no trial found a violation, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import REPO, SERVICES, BinanceServer, Cluster, Zygote  # noqa: E402  (puts bench/executor on the path too)
from report import summary_table, trial_lines  # noqa: E402
from schedule import KINDS, Shape, plan  # noqa: E402
from system import infrastructure  # noqa: E402
from trial import Options, run_trial  # noqa: E402

# Shorter trials for the CI subset (tests/faults): the same load, squeezed.
CI_SHAPE = Shape(seconds=6.0, burst_bots=10, hold_seconds=(1.2, 2.0), gap_seconds=(0.3, 1.0))


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default="all", help=f"'all' or a comma-separated list of: {', '.join(KINDS)}")
    parser.add_argument("--kind", help="one kind (with --seed: replay one trial)")
    parser.add_argument("--seeds", type=int, default=1, help="N seeds for every kind (default 1)")
    parser.add_argument("--first-seed", type=int, default=1, help="the seeds are first..first+N-1 (default 1)")
    parser.add_argument("--seed", type=int, help="this seed only")
    parser.add_argument("--load-seconds", type=float, default=Shape().seconds)
    parser.add_argument("--ci", action="store_true", help="the CI subset's short trials")
    # Above the longest path the system takes on purpose: an order whose outcome is unknown is released only
    # after its venue's not-found window (60 s for Binance) and the look-up just after it.
    parser.add_argument(
        "--quiescence-timeout",
        type=float,
        default=100.0,
        help="seconds after the load and the fault end before a trial counts as never quiet",
    )
    parser.add_argument("--out", type=Path, help="where trials keep results and logs (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep every trial's database")
    parser.add_argument("--log-level", default="WARNING", help="the services' log level")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="SERVICE:NAME=VALUE",
        help="a setting for one service's processes, for experiments (repeatable), e.g. "
        "reconciler:EGIS_PENDING_NOT_FOUND_WINDOW_SECONDS=10",
    )
    parser.add_argument(
        "--spawn",
        choices=("fork", "exec"),
        default="fork",
        help="fork services from a process that imported them once (zygote.py), or exec "
        "`python -m <service>.main` for each",
    )
    parser.add_argument("--list", action="store_true", help="list the fault kinds and exit")
    parser.add_argument(
        "--summarize",
        nargs="+",
        type=Path,
        metavar="RESULTS_JSON",
        help="print the summary table of earlier runs' results.json files together, and exit",
    )
    args = parser.parse_args(argv)
    kinds = [args.kind] if args.kind else list(KINDS) if args.kinds == "all" else args.kinds.split(",")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
    args.service_env = {}
    for item in args.env:
        service, _, setting = item.partition(":")
        name, equals, value = setting.partition("=")
        if service not in SERVICES or not equals or not name.startswith("EGIS_"):
            parser.error(f"--env {item!r}: expected SERVICE:EGIS_NAME=VALUE, SERVICE one of {', '.join(SERVICES)}")
        args.service_env.setdefault(service, {})[name] = value
    seeds = [args.seed] if args.seed is not None else range(args.first_seed, args.first_seed + args.seeds)
    args.trials = [(kind, seed) for seed in seeds for kind in kinds]
    args.shape = CI_SHAPE if args.ci else replace(Shape(), seconds=args.load_seconds)
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.list:
        print("\n".join(KINDS))
        return 0
    if args.summarize:
        print(summary_table([r for path in args.summarize for r in json.loads(path.read_text())["results"]]))
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="egis-faults-"))
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)
    print(f"{len(args.trials)} trials, results and logs under {out}", flush=True)
    results: list[dict] = []
    started = time.monotonic()
    args.started = datetime.now(UTC).isoformat(timespec="seconds")
    args.commit, args.dirty = _git("rev-parse", "--short", "HEAD"), bool(_git("status", "--porcelain"))
    with infrastructure(secure=True) as system:  # logins and ACLs, as ./egis up runs Kafka
        binance = BinanceServer.start(out / "binance-local.log")
        zygote = Zygote(out / "zygote.log") if args.spawn == "fork" else None
        cluster = Cluster(system, binance, log_level=args.log_level, zygote=zygote)
        try:
            for number, (kind, seed) in enumerate(args.trials, 1):
                trial_started = time.monotonic()
                result = asyncio.run(
                    run_trial(
                        cluster,
                        plan(kind, seed, args.shape),
                        Options(args.quiescence_timeout, args.keep, args.service_env),
                        out / f"{number:03d}-{kind}-{seed}",
                    )
                )
                result["trial_s"] = round(time.monotonic() - trial_started, 1)
                results.append(result)
                _progress(number, len(args.trials), result, started)
                _save(out, args, results)
        finally:
            cluster.stop_everything()
    print("\n" + summary_table(results), flush=True)
    print(f"\n{out / 'summary.md'}; {out / 'results.json'}", flush=True)
    return 1 if any(r.get("violations") != 0 for r in results) else 0


def _progress(number: int, total: int, result: dict, started: float) -> None:
    elapsed = time.monotonic() - started
    eta = elapsed / number * (total - number)
    verdict = (
        "ERROR"
        if result.get("violations") is None
        else "clean"
        if result["violations"] == 0
        else f"{result['violations']} VIOLATIONS"
    )
    print(
        f"\n[{number}/{total}] {verdict} in {result['trial_s']}s (elapsed {elapsed / 60:.1f} min, "
        f"about {eta / 60:.1f} min to go)",
        flush=True,
    )
    print("\n".join(trial_lines(result)), flush=True)
    print("    phases (s): " + ", ".join(f"{k} {v}" for k, v in result.get("phases_s", {}).items()), flush=True)


def _save(out: Path, args: argparse.Namespace, results: list[dict]) -> None:
    # The tree as the run found it: other work may commit while it runs.
    run = {
        "command": " ".join(sys.argv),
        "started": args.started,
        "commit": args.commit,
        "uncommitted_changes": args.dirty,
        "shape": {k: v for k, v in vars(args.shape).items()},
        "quiescence_timeout_s": args.quiescence_timeout,
        "service_env": args.service_env,
        "results": results,
    }
    (out / "results.json").write_text(json.dumps(run, indent=2, default=str))
    (out / "summary.md").write_text(summary_table(results) + "\n")


def _git(*command: str) -> str:
    return subprocess.run(["git", *command], cwd=REPO, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
