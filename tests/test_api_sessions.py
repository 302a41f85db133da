"""Sessions and tokens in URLs: the login cookie is a server-side session id (never the token),
HttpOnly, SameSite=Strict, Secure over https, revoked by logout everywhere it was copied to and
by removing the user; a token in a URL is refused and never reaches the access log."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from api_support import make_app, token_for
from fastapi.testclient import TestClient

from synthgate.api.auth import SESSION_COOKIE, RedactSecrets, redact_url, uvicorn_log_config
from synthgate.storage.users import hash_token


def csrf_of(page: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page).group(1)


@pytest.fixture
def app(tmp_path: Path):
    return make_app(tmp_path, images=2, k=2)


def log_in(client: TestClient, token: str) -> str:
    response = client.post("/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client.cookies[SESSION_COOKIE]


def test_the_cookie_is_a_session_id_not_the_token(app):
    token = token_for(app, "ann", "annotator")
    with TestClient(app) as client:
        session = log_in(client, token)
        second = log_in(client, token)
    assert session != token and token not in (session, second) and session != second
    stored = app.state.store.engine.connect().exec_driver_sql(
        "SELECT id_hash, user FROM api_sessions"
    )
    rows = {row[0]: row[1] for row in stored}
    assert rows == {hash_token(session): "ann", hash_token(second): "ann"}  # hashes only
    with TestClient(app) as client:
        client.cookies.set(SESSION_COOKIE, token)  # the token itself is no session
        assert client.get("/review", follow_redirects=False).headers["location"] == "/login"


def test_logout_revokes_the_session_everywhere(app):
    token = token_for(app, "ann", "annotator")
    with TestClient(app) as browser, TestClient(app) as thief:
        session = log_in(browser, token)
        thief.cookies.set(SESSION_COOKIE, session)  # a copy of the cookie
        page = thief.get("/review")
        assert page.status_code == 200 and "csrf-token" in page.text
        assert thief.get("/api/review/next").status_code == 200
        out = browser.post("/logout", data={"csrf": csrf_of(browser.get("/review").text)})
        assert out.status_code == 200 and "/login" in str(out.url)
        assert thief.get("/review", follow_redirects=False).headers["location"] == "/login"
        refused = thief.get("/api/review/next")
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_a_csrf_token_dies_with_its_session(app):
    token = token_for(app, "ann", "annotator")
    with TestClient(app) as old, TestClient(app) as new:
        log_in(old, token)
        stale = csrf_of(old.get("/review").text)
        log_in(new, token)
        fresh = csrf_of(new.get("/review").text)
    assert stale != fresh  # one per session, not one per user


def test_removing_a_user_ends_their_sessions(app):
    with TestClient(app) as client:
        log_in(client, token_for(app, "ann", "annotator"))
        assert client.get("/api/review/next").status_code == 200
        assert app.state.users.remove("ann")
        token_for(app, "ann", "annotator")  # a new user under the same name
        assert client.get("/api/review/next").status_code == 401


def test_expired_sessions_are_refused_and_cleared(app, monkeypatch):
    users = app.state.users
    user = users.authenticate(token_for(app, "ann", "annotator"))
    session = users.open_session(user, lasts_s=60)
    assert users.session_user(session).name == "ann"
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert users.session_user(session) is None
    users.open_session(user, lasts_s=60)  # clears the expired one
    count = app.state.store.engine.connect().exec_driver_sql("SELECT COUNT(*) FROM api_sessions")
    assert count.scalar() == 1


def test_the_cookie_is_secure_over_https(app):
    token = token_for(app, "ann", "annotator")
    with TestClient(app, base_url="https://review.example") as client:
        cookie = client.post("/login", data={"token": token}, follow_redirects=False).headers[
            "set-cookie"
        ]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    with TestClient(app) as client:
        plain = client.post("/login", data={"token": token}, follow_redirects=False).headers[
            "set-cookie"
        ]
    assert "Secure" not in plain


URL_TOKENS = [
    # (id, query built from the token)
    ("token", "token={t}"),
    ("access-token", "access_token={t}"),
    ("api-key-upper", "API_KEY={t}"),
    ("session-cookie-name", f"{SESSION_COOKIE}={{t}}"),
    ("token-shaped-any-name", "limit=5&t={t}"),
    ("empty-token-param", "token="),
]


@pytest.mark.parametrize(("case", "query"), URL_TOKENS, ids=[c[0] for c in URL_TOKENS])
def test_a_token_in_the_url_is_refused(app, case, query):
    token = token_for(app, "req", "requester")
    with TestClient(app) as client:
        for path in ("/api/batches", "/review", "/login", "/openapi.json"):
            response = client.get(f"{path}?{query.format(t=token)}")
            assert response.status_code == 400, (path, response.text)
            assert "Authorization: Bearer" in response.json()["detail"]
            assert token not in response.text


def test_ordinary_queries_pass(app):
    token = token_for(app, "req", "requester")
    with TestClient(app) as client:
        response = client.get(
            "/api/batches?limit=5&offset=0", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200


def test_the_access_log_filter_redacts_tokens(app):
    """(The served process's own log is checked end to end in tests/test_serve_process.py.)"""
    token = token_for(app, "req", "requester")
    assert redact_url(f"/api/batches?limit=2&token={token}") == "/api/batches?limit=2&token=***"
    assert redact_url(f"/api/batches/{token}?x=1") == "/api/batches/***?x=1"
    assert redact_url("/api/batches?limit=2&offset=4") == "/api/batches?limit=2&offset=4"
    config = uvicorn_log_config()
    assert "redact_secrets" in config["handlers"]["access"]["filters"]
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/review?session={token}", "1.1", 400), None,
    )  # fmt: skip
    assert RedactSecrets().filter(record)
    assert token not in record.getMessage() and "/review?session=***" in record.getMessage()
