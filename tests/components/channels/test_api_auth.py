"""What Rasa 3.6's HTTP API accepts as credentials (documented in docs/channels.md).

``rasa run --enable-api --auth-token T`` checks ``?token=T`` only; ``Authorization: Bearer``
is read only when ``--jwt-secret`` is given, and then holds a JWT signed with that secret
(``{"user": {"username": ..., "role": "admin"}}``), never the plain token.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import jwt
import pytest
from rasa import server
from sanic import Sanic


@pytest.fixture
def status(monkeypatch):
    """``status(app, **request) -> int``: the HTTP status of ``GET /status`` (auth, then agent)."""
    monkeypatch.setattr(Sanic, "test_mode", True)
    loops = []

    def get(app: Sanic, **request) -> int:
        async def main():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://kefu") as client:
                return (await client.get("/status", **request)).status_code

        loop = asyncio.new_event_loop()
        loops.append(loop)
        asyncio.set_event_loop(loop)
        loop.run_until_complete(app._startup())
        return loop.run_until_complete(main())

    yield get
    for loop in loops:
        loop.close()
    asyncio.set_event_loop(None)


def _app(**kwargs) -> Sanic:
    app = server.create_app(cors_origins=None, **kwargs)
    app.name = f"rasa_api_{uuid.uuid4().hex}"  # several apps in one process
    return app


def test_the_auth_token_is_read_from_the_query_only(status):
    # 409: authenticated, then "no agent loaded"; 401: not authenticated
    assert status(_app(auth_token="t0ken"), params={"token": "t0ken"}) == 409
    assert status(_app(auth_token="t0ken"), headers={"Authorization": "Bearer t0ken"}) == 401
    assert status(_app(auth_token="t0ken")) == 401


def test_a_bearer_jwt_signed_with_the_jwt_secret_is_accepted(status):
    secret = "jwt-secret-0123456789abcdef"
    admin = jwt.encode({"user": {"username": "ops", "role": "admin"}}, secret, algorithm="HS256")
    forged = jwt.encode({"user": {"username": "ops", "role": "admin"}}, "other", algorithm="HS256")
    auth = {"auth_token": "t0ken", "jwt_secret": secret}
    assert status(_app(**auth), headers={"Authorization": f"Bearer {admin}"}) == 409
    assert status(_app(**auth), headers={"Authorization": f"Bearer {forged}"}) == 401
    assert status(_app(**auth), headers={"Authorization": "Bearer t0ken"}) == 401
    assert status(_app(**auth), params={"token": "t0ken"}) == 409
