"""A throwaway PostgreSQL server for the tests: initdb into a temporary directory, started
on a free loopback port, one per test session; each test gets a database of its own,
copied from a template that already holds confcall's schema (a copy takes milliseconds,
a migration much longer). Durability is switched off: nothing here outlives the session."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import unused_port

TEMPLATE = "confcall_template"


class Unavailable(Exception):
    """No PostgreSQL server can be run here; says why."""


def _bindir() -> Path:
    """Where initdb and postgres are: on PATH, else Debian's versioned directories."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not candidates:
        raise Unavailable("PostgreSQL is not installed (no initdb on PATH or in "
                          "/usr/lib/postgresql/*/bin): apt-get install postgresql")
    return Path(candidates[-1]).parent


def _owner() -> tuple[int, int] | None:
    """PostgreSQL will not run as root: as root, run it as `postgres` (which Debian's
    package makes) or `nobody`; otherwise as whoever runs the tests."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return user.pw_uid, user.pw_gid
    raise Unavailable("running as root with neither a `postgres` nor a `nobody` user")


class Cluster:
    """One running PostgreSQL server and the databases made on it."""

    def __init__(self, *, durable: bool = False) -> None:
        # the tests' server keeps nothing past a crash; a benchmark's keeps the defaults
        self.durable = durable
        self.bindir = _bindir()
        self.owner = _owner()
        self.folder = Path(tempfile.mkdtemp(prefix="confcall-pg-"))
        self.data = self.folder / "data"
        self.port = unused_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.made = 0

    def _as_owner(self) -> dict[str, Any]:
        if self.owner is None:
            return {}
        return {"user": self.owner[0], "group": self.owner[1], "extra_groups": []}

    def start(self) -> Cluster:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise Unavailable("psycopg is not installed: pip install -e '.[test]'") from None
        if self.owner is not None:
            os.chown(self.folder, *self.owner)
        done = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "confcall", "-A",
             "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            capture_output=True, **self._as_owner())
        if done.returncode != 0:
            raise Unavailable(f"initdb failed: {done.stderr.decode(errors='replace')[-500:]}")
        log = (self.folder / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
             "-c", "max_connections=300", "-c", "shared_buffers=64MB",
             *([] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                        "-c", "full_page_writes=off"])],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, **self._as_owner())
        log.close()
        self._wait()
        from confcall.store.postgres_reads import migrate

        self._admin(f"CREATE DATABASE {TEMPLATE}")
        migrate(self.url(TEMPLATE))
        return self

    def url(self, database: str) -> str:
        return f"postgresql://confcall@127.0.0.1:{self.port}/{database}"

    def _wait(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise Unavailable("postgres exited at start: " + self.log()[-500:])
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise Unavailable("postgres did not start: " + self.log()[-500:]) from None
                time.sleep(0.05)

    def log(self) -> str:
        return (self.folder / "postgres.log").read_text(errors="replace")

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(statement)

    def database(self) -> str:
        """A new database holding confcall's schema and nothing else; its URL."""
        self.made += 1
        name = f"test_{os.getpid()}_{self.made}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # a fast shutdown: nothing here is kept
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
