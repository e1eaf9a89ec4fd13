"""A form interrupted by an action-server outage must not resume on stale state.

The customer was asked for the order's phone or e-mail when the action server went down: the
answer could not be validated. Once it is back, the customer's next message (a new order
question) must not be taken as the contact answer, and no verification attempt may be used up.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from deployment.servers import Servers, running_servers

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ORDER = "KF100234"
CONTACT = "13800138000"  # the phone number on the order
TRACKING = "SF1402938475"  # only shown once the contact is verified


@pytest.fixture(scope="module")
def servers(trained_model, tmp_path_factory) -> Iterator[Servers]:
    """Servers of their own: stopping the action server fills the Rasa log with its tracebacks,
    which the shared e2e servers' log check must not see."""
    with running_servers(trained_model, tmp_path_factory.mktemp("form_outage_home")) as running:
        yield running


def tracker(servers: Servers, sender: str) -> dict:
    """The conversation's tracker, read through the HTTP API."""
    response = requests.get(
        f"{servers.rasa_url}/conversations/{sender}/tracker",
        params={"token": servers.api_token},
        timeout=10,
    )
    assert response.status_code == 200
    return response.json()


def test_a_form_interrupted_by_an_outage_restarts_cleanly(servers):
    sender = "outage-form-zh"
    ask = servers.texts(sender, f"我的订单{ORDER}到哪了")
    assert "手机号或邮箱" in ask, ask
    servers.stop_actions()
    try:
        down = servers.texts(sender, CONTACT)
    finally:
        servers.start_actions()
    assert "抱歉" in down and TRACKING not in down, down

    again = servers.texts(sender, f"我的订单{ORDER}到哪了")
    assert "不一致" not in again and "未能通过验证" not in again, again  # no attempt burned
    assert "手机号或邮箱" in again, again  # the form asks for the contact again
    assert not tracker(servers, sender)["slots"]["contact_attempts"]
    status = servers.texts(sender, CONTACT)
    assert ORDER in status and TRACKING in status, status


def test_the_outage_apology_stops_the_form(servers):
    sender = "outage-form-en"
    assert "phone number or e-mail" in servers.texts(sender, f"where is order {ORDER}?")
    servers.stop_actions()
    try:
        down = servers.texts(sender, CONTACT)
    finally:
        servers.start_actions()
    assert "Sorry" in down and TRACKING not in down, down
    state = tracker(servers, sender)
    assert not state["active_loop"], state["active_loop"]  # the form was stopped
    assert state["slots"]["order_contact"] is None  # the unvalidated answer is not kept
    assert state["slots"]["requested_slot"] is None
