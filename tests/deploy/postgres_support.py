"""A throwaway PostgreSQL server on loopback (Debian's ``postgresql`` package).

:func:`start_postgres` makes a cluster with ``initdb`` in a fresh directory, starts it
with ``pg_ctl`` on 127.0.0.1 and a free port (its socket in the same directory, not
``/run/postgresql``), and creates a login role and a database of the same name with a
password (scram-sha-256 over TCP). PostgreSQL refuses to run as root: everything runs
as the ``postgres`` system user, so this needs root. :meth:`Postgres.stop` stops it and
deletes the directory.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.slapd import free_port


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb``, if installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@dataclass
class Postgres:
    directory: Path
    bin: Path
    port: int
    user: str
    password: str

    @property
    def url(self) -> str:
        """``postgresql://USER@127.0.0.1:PORT/USER`` (the password goes separately)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.user}"

    def run(self, *argv: str) -> str:
        """Run a PostgreSQL program as the ``postgres`` user; its stdout."""
        result = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            user="postgres", group="postgres", cwd=self.directory,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def sql(self, statement: str) -> str:
        """Run one statement as the superuser over the server's socket."""
        return self.run(
            "psql", "-h", str(self.directory), "-p", str(self.port), "-U", "postgres",
            "-d", self.user, "-At", "-c", statement,
        )  # fmt: skip

    def stop(self) -> None:
        try:
            self.run("pg_ctl", "-D", str(self.directory / "data"), "stop", "-m", "fast")
        finally:
            shutil.rmtree(self.directory.parent, ignore_errors=True)


def start_postgres(user: str = "jupyterhub") -> Postgres:
    """Start a private PostgreSQL server (see the module docstring)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
    parent = Path(tempfile.mkdtemp(prefix="lsst-hub-postgres-"))
    parent.chmod(0o755)
    directory = parent / "pg"
    directory.mkdir()
    account = pwd.getpwnam("postgres")
    os.chown(directory, account.pw_uid, account.pw_gid)
    server = Postgres(directory, bin_dir, free_port(), user, secrets.token_hex(16))
    server.run(
        "initdb", "-D", str(directory / "data"), "-U", "postgres",
        "--auth-local=trust", "--auth-host=scram-sha-256",
    )  # fmt: skip
    options = f"-p {server.port} -k {directory} -c listen_addresses=127.0.0.1"
    server.run(
        "pg_ctl", "-D", str(directory / "data"), "-o", options,
        "-l", str(directory / "postgres.log"), "-w", "start",
    )  # fmt: skip
    try:
        server.run(
            "psql", "-h", str(directory), "-p", str(server.port), "-U", "postgres", "-d",
            "postgres", "-c", f"CREATE ROLE {user} LOGIN PASSWORD '{server.password}'",
            "-c", f"CREATE DATABASE {user} OWNER {user}",
        )  # fmt: skip
    except BaseException:
        server.stop()
        raise
    return server
