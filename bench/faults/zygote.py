"""A process that imports the four services once, then forks every service process the trials start.

Most of a service's start is Python importing its modules, and a trial starts four (and
restarts the ones a fault kills) on cores the running system shares. Forked from a process
that already holds those modules, a service starts at once; each child is still its own
process in its own session, with the environment it is given and its own log, running
the same `main()` that `python -m <service>.main` runs (`run.py --spawn exec` starts
them that way instead). Failpoints read the environment at import, which happened
here before any environment was given: each child arms its own from its environment.

Protocol, one JSON object per line on stdin, one answer per line on the original stdout:
    {"op": "start", "service": "executor", "env": {...}, "log": "/path"}  -> {"pid": 123}
    {"op": "poll", "pid": 123}                                           -> {"returncode": null | int}
A closed stdin ends the zygote (the children live on until they are stopped).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import traceback

SERVICES = ("executor", "ledger", "signal_router", "reconciler")
# Loaded lazily by the executor when Binance accounts are configured: imported here so a child need not.
LAZY = ("egis_venues.binance.exchange", "executor.adapters.user_streams")


def main() -> None:
    for module in (*(f"{s}.main" for s in SERVICES), *LAZY):
        importlib.import_module(module)
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing else of this process's may reach the protocol
    finished: dict[int, int] = {}
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "start":
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(request, answers)
            finished.pop(pid, None)  # the kernel reuses pids: an earlier child's exit is not this one's
            answers.write(json.dumps({"pid": pid}) + "\n")
        elif request["op"] == "poll":
            answers.write(json.dumps({"returncode": _returncode(request["pid"], finished)}) + "\n")


def _returncode(pid: int, finished: dict[int, int]) -> int | None:
    if pid not in finished:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return finished.get(pid, -1)
        if done == 0:
            return None
        finished[pid] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return finished[pid]


def _child(request: dict, answers) -> None:
    code = 1
    try:
        answers.close()
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        from egis_common import failpoints

        failpoints.arm(os.environ.get(failpoints.ENVIRONMENT_VARIABLE, ""))
        sys.argv = [f"{request['service']}.main"]
        importlib.import_module(f"{request['service']}.main").main()
        code = 0
    except SystemExit as stopped:
        code = stopped.code if isinstance(stopped.code, int) else 1
    except BaseException:  # noqa: BLE001 - whatever ends the service ends the child, with its trace in the log
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
