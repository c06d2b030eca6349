"""A real Airflow deployment on loopback, configured only as ``docs/airflow.md`` tells a team.

The contract of this module, used by ``tests/airflow/test_scheduler.py`` and
``benchmarks/dag_overhead.py``:

* :func:`doc_environment` reads the environment block of ``docs/airflow.md`` (the fenced
  ``bash`` block after ``<!-- airflow-env -->``), replaces its *site values* (the lines before
  the ``# -- derived`` comment) with the caller's, runs it in ``bash -eu`` and returns what it
  exported.  The doc and the test cannot drift: a variable the doc stops setting is no longer
  set here, and a site value the caller does not supply is an error.
* :class:`Proc` starts a command in its own session (so it and all its children form one
  process group) with a minimal environment (no variable of the test process leaks in), logs
  to a file, and stops the whole group: SIGTERM, a grace period, then SIGKILL — and then each
  descendant it ever saw that is still alive, by pid.
* :class:`LineageServer` is ``lineage serve`` as a process; :class:`Airflow` is
  ``airflow db migrate`` and then ``airflow api-server``, ``airflow scheduler --skip-serve-logs``
  and ``airflow dag-processor`` as processes, controlled through Airflow's REST API and observed
  through its metadata database.
* :func:`descendants`, :func:`environ` and :func:`listening` read ``/proc``: which processes
  a component started, what environment each was given, and which TCP addresses each listens on.

Nothing here knows the example pipeline: callers pass DAG ids and expectations.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "airflow.md"
ENV_MARKER = "<!-- airflow-env -->"
DERIVED = "# -- derived"
# The only variables of the calling process a component gets (plus the doc's and the caller's).
PASSTHROUGH = ("HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


# -- the documented environment --------------------------------------------------------------


def doc_block(doc: Path = DOC, marker: str = ENV_MARKER) -> str:
    """The fenced code block that follows ``marker`` in ``doc``."""
    text = doc.read_text()
    at = text.find(marker)
    if at < 0:
        raise AssertionError(f"{doc} has no `{marker}` marker before its environment block")
    match = re.compile(r"```(?:bash|sh)\n(.*?)```", re.S).search(text, at)
    if match is None:
        raise AssertionError(f"no fenced bash block after `{marker}` in {doc}")
    return match.group(1)


_SITE_LINE = re.compile(r"^(export\s+)?([A-Z_][A-Z0-9_]*)=", re.M)


def site_names(block: str) -> dict[str, bool]:
    """Names the block's site-values part assigns, each with whether the doc exports it."""
    site, sep, _ = block.partition(DERIVED)
    if not sep:
        raise AssertionError(f"the environment block has no `{DERIVED}` line after its site values")
    return {name: bool(export) for export, name in _SITE_LINE.findall(site)}


def doc_environment(site: dict[str, str], doc: Path = DOC) -> dict[str, str]:
    """Run the doc's environment block with ``site`` as the site values; return what it exports.

    Each site value is assigned as the doc assigns it (exported or a plain shell variable), so
    only what the doc exports reaches a component.
    """
    block = doc_block(doc)
    names = site_names(block)
    if sorted(names) != sorted(site):
        raise AssertionError(f"the doc's site values are {sorted(names)}; the caller gave {sorted(site)}")
    derived = block.partition(DERIVED)[2].partition("\n")[2]
    script = "".join(f"{'export ' if names[k] else ''}{k}={_sh(v)}\n" for k, v in site.items()) + derived + "\nenv -0\n"
    out = subprocess.run(["bash", "-eu", "-c", script], env={"PATH": "/usr/bin:/bin"}, capture_output=True, check=True).stdout
    exported = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    for noise in ("PATH", "PWD", "SHLVL", "_", "OLDPWD"):
        exported.pop(noise, None)
    return exported


def _sh(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def base_env(extra: dict[str, str]) -> dict[str, str]:
    """A component's whole environment: the venv's bin first on PATH, a few basics, ``extra``."""
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    env["PYTHONUNBUFFERED"] = "1"
    # Airflow names its processes with setproctitle, which by default overwrites the memory
    # that /proc/PID/environ reads: the environment would look empty.  SPT_NOENV keeps it
    # readable (the title is then limited to the command line's length); it configures nothing else.
    env["SPT_NOENV"] = "1"
    env.update(extra)
    return env


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _children() -> dict[int, list[int]]:
    """ppid -> pids, for every process visible in /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and parentheses
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it."""
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return [p for p in out if Path(f"/proc/{p}").exists()]


def environ(pid: int) -> dict[str, str] | None:
    """The environment ``pid`` was started with (None if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def listening(pids: list[int]) -> list[tuple[int, str, int]]:
    """``(pid, address, port)`` of every TCP socket in LISTEN state that one of ``pids`` holds."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    out = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                addr, port = local.split(":")
                out.append((inodes[inode], _address(addr, width), int(port, 16)))
    return out


def _address(hexaddr: str, width: int) -> str:
    import ipaddress

    raw = bytes.fromhex(hexaddr)
    # /proc/net prints each 32-bit word in host (little-endian) order
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words)) if width == 8 else str(ipaddress.IPv6Address(words))


class Proc:
    """One command in its own session, logged to a file; :meth:`stop` ends it and all its children."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path, cwd: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.seen: dict[int, str] = {}  # every descendant pid observed -> its command line
        self.environs: dict[int, dict[str, str]] = {}  # ... and the environment it was started with
        self.listens: set[tuple[str, str, int]] = set()  # (command, address, port) of every listening socket seen
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def observe(self) -> list[int]:
        """Record every live descendant, its command line and its environment; return their pids."""
        pids = descendants(self.pid) if self.alive() else []
        for pid in pids:
            if pid not in self.seen:
                env = environ(pid)
                if env is not None:
                    self.seen[pid] = cmdline(pid)
                    self.environs[pid] = env
        for pid, address, port in listening(pids):
            self.listens.add((self.seen.get(pid, str(pid)), address, port))
        return pids

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, grace: float = 15) -> None:
        self.observe()
        if self.alive():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever is left of the group
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.wait(10)
        # Children that left the group (a new session) but that this process started.
        deadline = time.monotonic() + 5
        for pid in self.seen:
            if pid != self.pid and Path(f"/proc/{pid}").exists() and _started_by_us(pid, self.seen[pid]):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        while time.monotonic() < deadline and self.leftovers():
            time.sleep(0.1)

    def leftovers(self) -> list[str]:
        """Processes this one started that are still running (``pid command``)."""
        return [f"{pid} {cmd}" for pid, cmd in self.seen.items()
                if Path(f"/proc/{pid}").exists() and _started_by_us(pid, cmd) and not _zombie(pid)]


def _started_by_us(pid: int, cmd: str) -> bool:
    """The pid still runs the command we saw (not a recycled pid)."""
    return cmdline(pid) == cmd


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_http(url: str, proc: Proc, timeout: float, ok=lambda r: r.status_code == 200) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ok(httpx.get(url, timeout=2)):
                return
        except httpx.HTTPError:
            pass
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:.0f} s:\n{proc.tail()}")
        time.sleep(0.25)


# -- lineage serve ---------------------------------------------------------------------------


class LineageServer:
    """``lineage serve`` on a loopback port, over the store at ``database_url``."""

    def __init__(self, database_url: str, home: Path, log_dir: Path, port: int | None = None) -> None:
        self.database_url = database_url
        self.home = home
        self.log_dir = log_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        env = base_env({"LINEAGE_DATABASE_URL": self.database_url, "LINEAGE_HOME": str(self.home),
                        "LINEAGE_HOST": "127.0.0.1", "LINEAGE_PORT": str(self.port)})
        self.starts += 1
        self.proc = Proc(f"lineage-serve-{self.starts}", ["lineage", "serve", "--log-level", "warning"], env, self.log_dir, self.home)
        wait_http(f"{self.url}/api/v1/health", self.proc, timeout)

    def stop(self) -> None:
        if self.proc is not None:
            # SIGINT: uvicorn's graceful shutdown, then a normal exit.
            self.proc.stop(signal.SIGINT)


# -- Airflow ---------------------------------------------------------------------------------


class Airflow:
    """An Airflow 3 deployment: metadata migrated, then api-server, scheduler and dag-processor."""

    def __init__(self, env: dict[str, str], home: Path, log_dir: Path, api_port: int, metadata_url: str) -> None:
        self.env = env
        self.home = home
        self.log_dir = log_dir
        self.api_port = api_port
        self.api = f"http://127.0.0.1:{api_port}"
        self.metadata_url = metadata_url  # libpq URL of Airflow's metadata database (for observing)
        self.procs: dict[str, Proc] = {}
        self._token: str | None = None

    def command(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``airflow ARGS`` to completion with the deployment's environment."""
        log = self.log_dir / "airflow-cli.log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"\n$ airflow {' '.join(args)}\n".encode())
            out.flush()
            done = subprocess.run(["airflow", *args], env=self.env, cwd=self.home, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"`airflow {' '.join(args)}` exited with {done.returncode}:\n{log.read_text()[-3000:]}")
        return done

    def start(self, timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.command("db", "migrate")
        components = {
            "api-server": ["airflow", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)],
            # The log server would listen on every interface (port 8793): not in a test.
            "scheduler": ["airflow", "scheduler", "--skip-serve-logs"],
            "dag-processor": ["airflow", "dag-processor"],
        }
        for name, args in components.items():
            self.procs[name] = Proc(f"airflow-{name}", args, self.env, self.log_dir, self.home)
        wait_http(f"{self.api}/api/v2/monitor/health", self.procs["api-server"], timeout)

    def observe(self) -> None:
        for proc in self.procs.values():
            proc.observe()
        for name, proc in self.procs.items():
            if not proc.alive():
                raise RuntimeError(f"airflow {name} exited with {proc.popen.returncode}:\n{proc.tail()}")

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    # -- the REST API (as the simple auth manager's generated admin) ---------------------------
    def token(self) -> str:
        if self._token is None:
            passwords = self.home / "simple_auth_manager_passwords.json.generated"
            users = json.loads(passwords.read_text())
            user, password = next(iter(users.items()))
            r = httpx.post(f"{self.api}/auth/token", json={"username": user, "password": password}, timeout=30)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = httpx.request(method, f"{self.api}/api/v2/{path}", headers={"Authorization": f"Bearer {self.token()}"}, timeout=60, **kwargs)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} /api/v2/{path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def wait_for_dags(self, dag_ids: list[str], timeout: float) -> None:
        """Until the dag-processor has parsed and stored every one of ``dag_ids``."""
        deadline = time.monotonic() + timeout
        while True:
            self.observe()
            found = {d["dag_id"] for d in self.call("GET", "dags", params={"limit": 1000})["dags"]}
            if set(dag_ids) <= found:
                return
            if time.monotonic() > deadline:
                errors = self.call("GET", "importErrors")
                raise RuntimeError(f"DAGs {sorted(set(dag_ids) - found)} not parsed in {timeout:.0f} s; import errors: {errors}")
            time.sleep(1)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call("PATCH", f"dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str) -> str:
        return self.call("POST", f"dags/{dag_id}/dagRuns", json={"logical_date": None})["dag_run_id"]

    # -- the metadata database (read-only observation) -----------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        """Every DAG run with its task instances: ``{dag_id, run_id, state, run_type, tasks: {task_id: state}}``."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.metadata_url, row_factory=dict_row) as conn:
            runs = conn.execute("SELECT dag_id, run_id, state, run_type FROM dag_run ORDER BY id").fetchall()
            tis = conn.execute("SELECT dag_id, run_id, task_id, state, try_number FROM task_instance").fetchall()
        for run in runs:
            run["tasks"] = {t["task_id"]: t["state"] for t in tis if (t["dag_id"], t["run_id"]) == (run["dag_id"], run["run_id"])}
            run["tries"] = {t["task_id"]: t["try_number"] for t in tis if (t["dag_id"], t["run_id"]) == (run["dag_id"], run["run_id"])}
        return runs

    def wait_for_runs(self, done, timeout: float, poll: float = 1.0) -> list[dict[str, Any]]:
        """Poll the metadata database until ``done(runs)`` is true; observe processes meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            self.observe()
            runs = self.runs()
            if done(runs):
                return runs
            if time.monotonic() > deadline:
                raise RuntimeError(f"Airflow runs not done within {timeout:.0f} s: "
                                   + json.dumps([{k: r[k] for k in ('dag_id', 'state', 'tasks')} for r in runs]))
            time.sleep(poll)


TERMINAL = {"success", "failed"}
