"""Run a real PostgreSQL server as a local process (no Docker).

Files, under the *server home* (normally ``state_dir`` itself):

    pgdata/             cluster data dir, owned by the ``postgres`` user, mode 0700
    pgsocket/           unix socket dir (TCP on 127.0.0.1 is the primary transport)
    postgres.log        server log (pg_ctl -l)
    postgres.password   superuser password, used as initdb --pwfile (mode 0600)

plus ``state_dir/postgres.json`` (mode 0600): connection info of the last start.

When run as root the server runs as the ``postgres`` system user, because postgres refuses
to run as root. For its whole life the server opens absolute paths under pgdata (e.g.
global/pg_control at every checkpoint), so every parent directory must stay searchable by
that user. If one is not (no o+x), or is a pytest temp root (``/tmp/pytest-of-<user>``,
which pytest resets to 0700 whenever a session starts: a running server then PANICs at its
next checkpoint), the server home moves to ``/tmp/egis-postgres-<hash of state_dir>``.
Parents' permissions are never changed. Relocated homes whose state_dir has been deleted
(pytest prunes old tmp dirs) are stopped if still running and removed by the next start.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg

from egis_localinfra.ports import free_port, port_is_free

PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "egis"
HOST = "127.0.0.1"
# /tmp is 1777 and nobody tightens it: a safe home when state_dir cannot be reached.
RELOCATED_ROOT = Path("/tmp")
READY_TIMEOUT_S = 30.0
# Linux sun_path is 108 bytes including the trailing NUL.
MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class PostgresInfo:
    host: str
    port: int
    user: str
    password: str
    pid: int
    data_dir: Path
    log_path: Path
    version: str

    @property
    def admin_dsn(self) -> str:
        return self.dsn("postgres")

    def dsn(self, database: str) -> str:
        auth = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"


# --------------------------------------------------------------------------- install


def ensure_postgres_installed() -> Path:
    """Return the newest /usr/lib/postgresql/<v>/bin, installing Debian's package if needed."""
    bin_dir = _newest_bin_dir()
    if bin_dir is None:
        _apt_install_postgres()
        bin_dir = _newest_bin_dir()
    if bin_dir is None:
        raise RuntimeError(f"apt-get installed postgresql but no server binary under {PG_ROOT}")
    return bin_dir


def _newest_bin_dir() -> Path | None:
    candidates = [p.parent for p in PG_ROOT.glob("*/bin/postgres") if p.parent.parent.name.isdigit()]
    return max(candidates, key=lambda p: int(p.parent.name), default=None)


def _apt_install_postgres() -> None:
    # Debian's postinst would otherwise create and start a "main" cluster on port 5432,
    # a second server we never use. createcluster.conf includes this directory.
    conf_dir = Path("/etc/postgresql-common/createcluster.d")
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "egis-no-main-cluster.conf").write_text("create_main_cluster = false\n")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
    ):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr)[-6000:]
            raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{output}")


# --------------------------------------------------------------------------- public API


def start_postgres(state_dir: Path, *, durable: bool = False) -> PostgresInfo:
    """Start (or return the already running) server for state_dir and wait until it answers.

    durable=False turns off fsync, synchronous_commit and full_page_writes: fast, but a
    machine crash can corrupt the cluster. Only for tests and throwaway local runs.
    An already running server is returned as is, whatever its durability.
    """
    state_dir = Path(state_dir).absolute()
    running = postgres_status(state_dir)
    if running is not None:
        return running
    bin_dir = ensure_postgres_installed()
    _remove_orphaned_homes(bin_dir)
    home = _prepare_home(state_dir)
    if not (home / "pgdata" / "PG_VERSION").exists():
        _initdb(bin_dir, home, durable)
    recorded = _recorded_port(state_dir)
    # Back on the port of its last start while it is free: running services keep their URL.
    port = recorded if recorded and port_is_free(recorded) else free_port()
    _write_server_conf(home, port, durable)
    _pg_ctl(bin_dir, home / "pgdata", "start", "-l", str(home / "postgres.log"), "-t", "30")
    info = _wait_ready(home, port)
    _write_state(state_dir, info, durable)
    return info


async def create_database(admin_dsn: str, name: str, *, if_missing: bool = False) -> None:
    """CREATE DATABASE name on the server of `admin_dsn`; with if_missing, an existing one is kept."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        if not (if_missing and await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def stop_postgres(state_dir: Path) -> bool:
    """Fast shutdown (rolls back open transactions); False, and no error, if nothing is running."""
    info = postgres_status(state_dir)
    if info is not None:
        _pg_ctl(ensure_postgres_installed(), info.data_dir, "stop", "-m", "fast", "-t", "60")
    return info is not None


def _recorded_port(state_dir: Path) -> int | None:
    try:
        return int(json.loads((state_dir / "postgres.json").read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def postgres_status(state_dir: Path) -> PostgresInfo | None:
    """Info from postgres.json if its server process is still alive, else None."""
    state_file = Path(state_dir).absolute() / "postgres.json"
    if not state_file.exists():
        return None
    raw = json.loads(state_file.read_text())
    fields = {name: raw[name] for name in PostgresInfo.__dataclass_fields__}
    info = PostgresInfo(**{**fields, "data_dir": Path(raw["data_dir"]), "log_path": Path(raw["log_path"])})
    return info if _live_postmaster_pid(info.data_dir) == info.pid else None


# --------------------------------------------------------------------------- filesystem


def _prepare_home(state_dir: Path) -> Path:
    """Create the server home and the postgres-owned dirs and files in it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    home = _server_home(state_dir)
    _make_home_dir(home, state_dir)
    for name in ("pgdata", "pgsocket"):
        (home / name).mkdir(mode=0o700, exist_ok=True)
        _give_to_postgres(home / name)
    log = home / "postgres.log"
    log.touch(exist_ok=True)
    _give_to_postgres(log)  # pg_ctl opens the log as the postgres user
    return home


def _server_home(state_dir: Path) -> Path:
    if not _running_as_root() or _stays_searchable(state_dir.parent):
        return state_dir
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    return RELOCATED_ROOT / f"egis-postgres-{digest}"


def _stays_searchable(directory: Path) -> bool:
    """Every directory up to / is searchable by others and is not a pytest temp root."""
    chain = (directory, *directory.parents)
    return all(d.stat().st_mode & stat.S_IXOTH and not d.name.startswith("pytest-of-") for d in chain)


def _make_home_dir(home: Path, state_dir: Path) -> None:
    home.mkdir(exist_ok=True)
    if home != state_dir:
        # A predictable name in /tmp: refuse one that someone else planted.
        if home.is_symlink() or home.stat().st_uid != os.geteuid():
            raise RuntimeError(f"{home} exists but is not a directory owned by us; remove it")
        (home / "state_dir").write_text(str(state_dir))  # lets _remove_orphaned_homes find orphans
    # o+x only (search, not list) so the postgres user can reach its files inside.
    home.chmod(stat.S_IMODE(home.stat().st_mode) | stat.S_IXOTH)


def _remove_orphaned_homes(bin_dir: Path) -> None:
    """Stop and delete relocated homes whose state_dir is gone (each holds a whole pgdata).

    Without postgres.json nobody could stop such a server (pytest only prunes tmp dirs of
    finished sessions, so these are leftovers of crashed or unstopped runs).
    """
    for home in RELOCATED_ROOT.glob("egis-postgres-*"):
        origin = home / "state_dir"
        if not origin.exists() or Path(origin.read_text()).exists():
            continue
        if _live_postmaster_pid(home / "pgdata") is not None:
            _pg_ctl(bin_dir, home / "pgdata", "stop", "-m", "immediate", "-t", "60")
        shutil.rmtree(home, ignore_errors=True)


def _give_to_postgres(path: Path) -> None:
    if _running_as_root():
        shutil.chown(path, user="postgres", group="postgres")


def _running_as_root() -> bool:
    return os.geteuid() == 0


# --------------------------------------------------------------------------- server setup


def _initdb(bin_dir: Path, home: Path, durable: bool) -> None:
    pgdata = home / "pgdata"
    # A half-finished earlier initdb leaves files without PG_VERSION; initdb wants it empty.
    shutil.rmtree(pgdata)
    pgdata.mkdir(mode=0o700)
    _give_to_postgres(pgdata)
    pwfile = _password_file(home)
    args = [
        str(bin_dir / "initdb"),
        "-D",
        str(pgdata),
        "-U",
        SUPERUSER,
        f"--pwfile={pwfile}",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C.UTF-8",  # C.UTF-8 always exists; LANG's locale may not
    ]
    _run_as_postgres(args + ([] if durable else ["--no-sync"]), timeout=120)
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write("\ninclude_if_exists = 'egis.conf'\n")


def _password_file(home: Path) -> Path:
    """Random superuser password, kept so a restarted cluster can still be reached."""
    pwfile = home / "postgres.password"
    pwfile.write_text(secrets.token_hex(16) + "\n")
    pwfile.chmod(0o600)
    _give_to_postgres(pwfile)  # initdb reads it as the postgres user
    return pwfile


def _write_server_conf(home: Path, port: int, durable: bool) -> None:
    """Per-start settings (the port may change from one start to the next) in pgdata/egis.conf."""
    socket_dir = home / "pgsocket"
    too_long = len(f"{socket_dir}/.s.PGSQL.{port}") > MAX_SOCKET_PATH
    lines = [
        f"listen_addresses = '{HOST}'",
        f"port = {port}",
        # An empty list disables the unix socket; clients use TCP anyway.
        f"unix_socket_directories = '{'' if too_long else socket_dir}'",
        "max_connections = 200",
    ]
    if not durable:
        lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
    conf = home / "pgdata" / "egis.conf"
    conf.write_text("\n".join(lines) + "\n")
    _give_to_postgres(conf)


def _pg_ctl(bin_dir: Path, pgdata: Path, action: str, *extra: str) -> None:
    args = [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-w", *extra, action]
    try:
        _run_as_postgres(args, timeout=90)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{_log_tail(pgdata.parent)}") from None


def _run_as_postgres(args: list[str], *, timeout: float) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if _running_as_root() else []
    # pg_ctl redirects the server's stdio to the log, so capturing output cannot hang.
    proc = subprocess.run(prefix + args, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")


def _log_tail(home: Path, lines: int = 40) -> str:
    log = home / "postgres.log"
    if not log.exists():
        return f"(no log at {log})"
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join([f"--- tail of {log} ---", *tail])


# --------------------------------------------------------------------------- readiness & state


def _wait_ready(home: Path, port: int) -> PostgresInfo:
    password = (home / "postgres.password").read_text().strip()
    try:
        version = _run_coroutine(_query_version(port, password))
    except Exception as exc:
        raise RuntimeError(
            f"postgres on {HOST}:{port} did not answer within {READY_TIMEOUT_S:.0f}s: {exc!r}\n{_log_tail(home)}"
        ) from exc
    return PostgresInfo(
        host=HOST,
        port=port,
        user=SUPERUSER,
        password=password,
        pid=_live_postmaster_pid(home / "pgdata") or 0,
        data_dir=home / "pgdata",
        log_path=home / "postgres.log",
        version=version,
    )


async def _query_version(port: int, password: str) -> str:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            conn = await asyncpg.connect(
                host=HOST, port=port, user=SUPERUSER, password=password, database="postgres", timeout=5
            )
            try:
                await conn.fetchval("select version()")
                return await conn.fetchval("show server_version")
            finally:
                await conn.close()
        except (TimeoutError, OSError, asyncpg.CannotConnectNowError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def _run_coroutine(coro):
    # start_postgres is synchronous but may be called from inside a running event loop
    # (async tests), where asyncio.run() is refused: use a fresh loop in a worker thread,
    # carrying the caller's context variables along as asyncio.to_thread would.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(contextvars.copy_context().run, asyncio.run, coro).result()


def _write_state(state_dir: Path, info: PostgresInfo, durable: bool) -> None:
    record = {**asdict(info), "data_dir": str(info.data_dir), "log_path": str(info.log_path)}
    record.update(durable=durable, socket_dir=str(info.data_dir.parent / "pgsocket"))
    state_file = state_dir / "postgres.json"
    # Created 0600 before writing: it holds the superuser password.
    fd = os.open(state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(record, out, indent=2)


def _live_postmaster_pid(pgdata: Path) -> int | None:
    """The pid in postmaster.pid if that process is a running postgres (not a reused pid)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm == "postgres" else None
