"""A PostgreSQL cluster of the machine's binaries (`initdb`) in the stack's folder."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import time
from pathlib import Path

from podium.stack import credentials
from podium.stack._processes import StackError, cmdline, pid_alive, port_open, require_binary, run
from podium.stack._settings import StackSettings
from podium.stack.state import PostgresProcess, stack_dir

_PACKAGE = "postgresql"
_SERVER_OPTIONS = (
    # A development cluster: durability traded for speed on a shared laptop or CI machine.
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
)


def postgres_home() -> Path:
    return stack_dir() / "postgres"


def _bin_dirs() -> list[Path]:
    return sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def binary(name: str) -> Path:
    return require_binary(name, package=_PACKAGE, extra_dirs=_bin_dirs())


def _as_user(settings: StackSettings) -> list[str]:
    """The prefix that runs a server command unprivileged: `initdb` refuses to run as root."""
    if os.geteuid() != 0:
        return []
    runuser = require_binary("runuser", package="util-linux")
    return [str(runuser), "-u", settings.postgres_user, "--"]


def _prepare_home(settings: StackSettings) -> Path:
    home = postgres_home()
    home.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(settings.postgres_user)
        except KeyError as exc:
            raise StackError(
                f"user {settings.postgres_user!r} does not exist: set PODIUM_STACK_POSTGRES_USER "
                "to an unprivileged user that runs PostgreSQL"
            ) from exc
        for path in (home, *home.rglob("*")):
            if path.stat().st_uid != user.pw_uid:
                shutil.chown(path, user.pw_uid, user.pw_gid)
        if not os.access(home, os.X_OK):
            raise StackError(f"cannot enter {home}")
        run(
            [*_as_user(settings), "test", "-w", str(home)],
            what=(
                f"checking that user {settings.postgres_user!r} can write {home} "
                "(every parent folder must be searchable by that user)"
            ),
        )
    return home


def dsn(settings: StackSettings) -> str:
    """The DSN of the stack's database, with the password of its `postgres` user."""
    password = credentials.ensure_postgres_password()
    return (
        f"postgresql://{credentials.POSTGRES_USER}:{password}@127.0.0.1:"
        f"{settings.postgres_port}/{settings.postgres_database}"
    )


def masked(dsn: str) -> str:
    """`dsn` without its password, for display."""
    return re.sub(r"^(postgresql://[^:@/]+):[^@]*@", r"\1:***@", dsn)


def _password_auth(data: Path) -> bool:
    try:
        hba = (data / "pg_hba.conf").read_text()
    except OSError:
        return False
    return "scram-sha-256" in hba and " trust" not in hba


def postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_running(process: PostgresProcess) -> bool:
    return (
        pid_alive(process.pid)
        and "postgres" in cmdline(process.pid)
        and port_open(process.port)
        and _accepting(process.port)
    )


def _accepting(port: int) -> bool:
    pg_isready = binary("pg_isready")
    try:
        run(
            [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
            what="pg_isready",
            timeout=10,
        )
    except StackError:
        return False
    return True


def start(settings: StackSettings) -> PostgresProcess:
    """`initdb` (once), `pg_ctl start`, wait until it accepts connections, create the database."""
    initdb, pg_ctl = binary("initdb"), binary("pg_ctl")
    home = _prepare_home(settings)
    data = home / "data"
    password = credentials.ensure_postgres_password()
    if (data / "PG_VERSION").exists() and not _password_auth(data):
        # A cluster from before passwords (trust): a development cluster, made anew. The API
        # token `podium token create --save` kept lived in it.
        stop(data, settings)
        shutil.rmtree(data)
        (stack_dir() / "api-token").unlink(missing_ok=True)
    if not (data / "PG_VERSION").exists():
        if data.exists():
            shutil.rmtree(data)
        pwfile = home / ".pwfile"  # read by initdb as the server's user, removed at once
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        if os.geteuid() == 0:
            user = pwd.getpwnam(settings.postgres_user)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        try:
            run(
                [
                    *_as_user(settings),
                    initdb,
                    "-D",
                    data,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-U",
                    credentials.POSTGRES_USER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
                what="initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
    pid = postmaster_pid(data)
    if pid is not None and pid_alive(pid) and "postgres" in cmdline(pid):
        # A server of this data folder runs already (perhaps on another port): stop it first.
        stop(data, settings)
    if port_open(settings.postgres_port):
        raise StackError(
            f"port {settings.postgres_port} is already in use by another process: stop it, or "
            "choose another port with PODIUM_STACK_POSTGRES_PORT"
        )
    options = f"-k {home} -h 127.0.0.1 -p {settings.postgres_port} {_SERVER_OPTIONS}"
    run(
        [
            *_as_user(settings),
            pg_ctl,
            "-D",
            data,
            "-l",
            home / "postgres.log",
            "-o",
            options,
            "-w",
            "-t",
            str(int(settings.ready_timeout_s)),
            "start",
        ],
        what=f"pg_ctl start (see {home / 'postgres.log'})",
        timeout=settings.ready_timeout_s + 10,
    )
    deadline = time.monotonic() + settings.ready_timeout_s
    while not _accepting(settings.postgres_port):
        if time.monotonic() > deadline:
            raise StackError(f"PostgreSQL does not accept connections; see {home / 'postgres.log'}")
        time.sleep(0.2)
    _create_database(settings)
    pid = postmaster_pid(data)
    if pid is None:
        raise StackError(f"PostgreSQL started but {data / 'postmaster.pid'} is unreadable")
    return PostgresProcess(
        dsn=dsn(settings), pid=pid, port=settings.postgres_port, data_dir=str(data)
    )


def _create_database(settings: StackSettings) -> None:
    psql = binary("psql")
    name = settings.postgres_database
    connect = ["-h", "127.0.0.1", "-p", str(settings.postgres_port), "-U", "postgres"]
    env = {**os.environ, "PGPASSWORD": credentials.ensure_postgres_password()}
    exists = run(
        [
            psql,
            *connect,
            "-d",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
        ],
        what="psql",
        env=env,
    )
    if exists.strip() != "1":
        run([binary("createdb"), *connect, name], what=f"createdb {name}", env=env)


def stop(data: Path, settings: StackSettings) -> None:
    """`pg_ctl stop -m fast`, then make sure the postmaster is gone."""
    pid = postmaster_pid(data)
    if pid is None or not pid_alive(pid):
        return
    run(
        [
            *_as_user(settings),
            binary("pg_ctl"),
            "-D",
            data,
            "-m",
            "fast",
            "-w",
            "-t",
            str(int(settings.stop_timeout_s)),
            "stop",
        ],
        what="pg_ctl stop",
        timeout=settings.stop_timeout_s + 10,
    )
    deadline = time.monotonic() + settings.stop_timeout_s
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise StackError(f"PostgreSQL (pid {pid}) did not stop")
        time.sleep(0.1)
