"""Behind an authenticating proxy the page needs no token; the proxy's header counts only from a trusted peer."""

from __future__ import annotations

import pytest

from lineage.auth import grants
from tests_support import LiveServer

pytestmark = [pytest.mark.browser]


def _server(settings, db, trusted):
    from lineage.api.app import create_app

    return LiveServer(create_app(settings.model_copy(update={"trusted_proxies": trusted}), db=db))


def _open(browser, url: str, user: str) -> tuple[str, str]:
    """What a browser whose every request carries the proxy's header sees: (the signed-in line, the page)."""
    ctx = browser.new_context(extra_http_headers={"X-Forwarded-User": user})
    try:
        page = ctx.new_page()
        page.goto(f"{url}/ui/#/contracts")
        page.wait_for_selector("#token, main h1:text('Contracts')")
        return page.inner_text("#who"), page.inner_text("main")
    finally:
        ctx.close()


def test_a_trusted_proxys_user_is_signed_in_without_a_token(browser, settings, db):
    with db.connection() as conn:
        grants.grant(conn, "alice@example.com", "viewer", "admin")
    with _server(settings, db, ["127.0.0.0/8"]) as server:
        who, main = _open(browser, server.url, "Alice@Example.com")
    assert who.strip() == "alice@example.com (viewer)", "no sign-out button: the proxy, not the page, holds the session"
    assert "Contracts" in main and "API token" not in main


def test_the_same_header_from_an_untrusted_peer_signs_nobody_in(browser, settings, db):
    with db.connection() as conn:
        grants.grant(conn, "alice@example.com", "viewer", "admin")
    with _server(settings, db, ["10.9.9.9"]) as server:
        who, main = _open(browser, server.url, "alice@example.com")
    assert who == "" and "API token" in main, "the page asks for a token; the header alone proves nothing"
