"""A real PgBouncer process in front of the test PostgreSQL, for tests (imported by tests/deploy).

:class:`PgBouncer` writes a configuration (``pool_mode = transaction`` unless told otherwise),
starts Debian's ``pgbouncer`` on 127.0.0.1 at a free port and rewrites a role's URL of the
test database to go through it. It listens only on loopback, trusts the users it lists (the
test database's roles, which the test server itself trusts on its private socket) and is
stopped, with its files removed, on exit. ``make pgbouncer`` installs the binary.

Ports come from ``LINEAGE_TEST_PORTS`` (``LOW-HIGH``, default 7100-7199): PgBouncer cannot
be asked for port 0 and report back, so :func:`free_port` probes that range.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo


def pgbouncer_binary() -> str:
    """Debian installs it in /usr/sbin, which a non-root PATH may lack."""
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None)
    if found is None:
        raise RuntimeError("pgbouncer is not installed: run `make pgbouncer` (Debian's package)")
    return found


def pgbouncer_version() -> tuple[int, ...]:
    out = subprocess.run([pgbouncer_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(p) for p in out.split()[1].split(".")[:3])


def free_port() -> int:
    """A loopback port nobody listens on, from ``LINEAGE_TEST_PORTS`` (default 7100-7199)."""
    low, _, high = os.environ.get("LINEAGE_TEST_PORTS", "7100-7199").partition("-")
    start = os.getpid() % (int(high) - int(low) + 1)  # concurrent sessions start at different ports
    ports = list(range(int(low), int(high) + 1))
    for port in ports[start:] + ports[:start]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high} (LINEAGE_TEST_PORTS)")


class PgBouncer:
    """``with PgBouncer(app_url, pool_size=4) as bouncer: bouncer.url`` is ``app_url`` through it."""

    def __init__(self, target_url: str, *, pool_mode: str = "transaction", pool_size: int = 4) -> None:
        self.target = conninfo_to_dict(target_url)
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lineage-pgbouncer-"))
        self.user: str | None = None
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root and drops to a user of our choice: the one who
            # owns the server's socket directory (the embedded server's system user) can reach it.
            host = self.target.get("host", "")
            uid = os.stat(host).st_uid if host.startswith("/") else pwd.getpwnam("nobody").pw_uid
            self.user = pwd.getpwuid(uid).pw_name
            os.chown(self.dir, uid, -1)  # its log and pid file
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return make_conninfo("", host="127.0.0.1", port=self.port, dbname=self.target["dbname"], user=self.target["user"])

    def _write_config(self) -> Path:
        t = self.target
        server = f"host={t.get('host', '/tmp')} port={t.get('port', 5432)} dbname={t['dbname']}"
        users = self.dir / "users.txt"
        users.write_text(f'"{t["user"]}" ""\n')
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"{t['dbname']} = {server}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            f"pool_mode = {self.pool_mode}\n"
            f"default_pool_size = {self.pool_size}\n"
            "max_client_conn = 200\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
            f"pidfile = {self.dir / 'pgbouncer.pid'}\n"
        )
        for f in (users, ini):
            f.chmod(0o644)
        return ini

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def __enter__(self) -> "PgBouncer":
        ini = self._write_config()
        cmd = [pgbouncer_binary(), str(ini)]
        if self.user is not None:
            cmd[1:1] = ["-u", self.user]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited ({self.proc.returncode}): {self.proc.stdout.read().decode()}{self.log()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"pgbouncer did not listen on {self.port}: {self.log()}")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # immediate shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)
