"""Fixtures for the dashboard's browser tests: the demo's own store, served by ``lineage serve``,
and Debian's Chromium driven by Playwright (never ``playwright install``).

``demo_server`` runs ``python -m example_pipeline.demo`` (what ``make demo`` runs: Airflow, the gate,
real principals) into a fresh ``LINEAGE_HOME``, adds one dataset whose name is an HTML
injection attempt, then starts ``lineage serve`` on that home and hands out tokens for a
``viewer`` and an ``auditor`` created through the API by the local admin.  Screenshots go to
``tests/dashboard/output/`` (and the README's one to ``docs/``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = Path(__file__).resolve().parent / "output"
DOCS = Path(__file__).resolve().parents[2] / "docs"
HOSTILE = "<img src=x onerror=alert(1)>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DemoServer:
    url: str
    home: Path
    admin: str
    viewer: str
    auditor: str

    def api(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {token or self.admin}"})


def _env(home: Path, port: int) -> dict[str, str]:
    env = {**os.environ, "LINEAGE_HOME": str(home), "LINEAGE_PORT": str(port),
           "PYTHONPATH": str(Path(__file__).parents[2] / "dags")}  # as `make demo` runs the demo
    env.pop("LINEAGE_DATABASE_URL", None)  # the demo runs on its own embedded PostgreSQL
    env.pop("LINEAGE_URL", None)
    env.pop("LINEAGE_TOKEN", None)
    return env


def _hostile_event() -> dict:
    # A job in the pipeline's namespace reads a source whose name is markup.
    return {
        "eventType": "COMPLETE", "eventTime": "2026-11-26T10:00:00Z", "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "ml-pipeline", "name": "probe__<b>bold</b>"},
        "inputs": [{"namespace": "partner-drops", "name": HOSTILE}], "outputs": [],
    }


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("dashboard-demo") / "home"
    port = _free_port()
    done = subprocess.run([sys.executable, "-m", "example_pipeline.demo", "--home", str(home)], env=_env(home, port),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"http://127.0.0.1:{port}/ " in done.stdout and "(dashboard)" in done.stdout, "the demo names the dashboard's URL"
    log = (home / "logs" / "dashboard-tests-server.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-c", "from lineage.cli import main; main()", "serve", "--log-level", "warning"],
                            env=_env(home, port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "lineage serve did not come up"
        time.sleep(0.2)
    try:
        admin = (home / "admin-token").read_text().strip()
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {admin}"}) as c:
            made = {}
            for role in ("viewer", "auditor"):
                r = c.post("/api/v1/auth/tokens", json={"name": f"dashboard-{role}", "principal": f"{role}@example.com", "roles": [role]})
                assert r.status_code == 201, r.text
                made[role] = r.json()["token"]
            assert c.post("/api/v1/lineage", json=_hostile_event()).status_code == 201
        yield DemoServer(url, home, admin, made["viewer"], made["auditor"])
    finally:
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful exit releases the embedded PostgreSQL
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make install` installs it (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A fresh browser context (its own sessionStorage) that records dialogs, page errors and
    every URL requested, and signs in by pasting a token as a person would."""

    def __init__(self, browser, server: DemoServer) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.server = server
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def sign_in(self, token: str) -> None:
        self.page.goto(f"{self.server.url}/ui/")
        self.page.fill("#token", token)
        self.page.click("#signin button[type=submit]")
        self.page.wait_for_selector("#who >> text=(")

    def open(self, hash_route: str) -> None:
        self.page.goto(f"{self.server.url}/ui/{hash_route}")

    def shot(self, name: str) -> Path:
        OUTPUT.mkdir(exist_ok=True)
        path = OUTPUT / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def page(browser, demo_server):
    p = Page(browser, demo_server)
    yield p
    p.context.close()
