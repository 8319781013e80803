"""Fast checks of the pieces of tenancy that need no process: tokens, budget windows, and how a
single-flight follower rewrites its leader's `done`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from api import mirror
from api.auth import Keyring, Principal
from shared import budgets
from shared.errors import Unauthorized
from shared.settings import load_settings

FARM = "farm:" + "0f1e2d3c4b5a" * 3
COUNCIL = "council:" + "a5b4c3d2e1f0" * 3


def ring(*keys: str) -> Keyring:
    return Keyring(load_settings(sidecar_api_keys=",".join(keys)))


def test_keys_and_tokens_name_their_tenant_and_subject() -> None:
    keyring = ring(FARM, COUNCIL)
    assert keyring.authenticate(FARM.partition(":")[2]) == Principal("farm")
    token = keyring.mint("council", "ann", 600, 0.5).token
    assert keyring.authenticate(token) == Principal("council", "ann", 0.5)
    assert keyring.authenticate(token) == Principal("council", "ann", 0.5)  # remembered


@pytest.mark.parametrize("make", [
    lambda k: k.mint("farm", "ann", -1, None).token,                   # expired
    lambda k: k.mint("farm", "ann", 600, None).token[:-2] + "xx",      # forged signature
    lambda k: ring(FARM, "gone:" + "9" * 8 + "abcdefgh" * 4).mint("gone", "a", 600, None).token,
    lambda k: "not.a.token",
    lambda k: "",
])
def test_bad_credentials_are_401(make: object) -> None:
    keyring = ring(FARM)
    with pytest.raises(Unauthorized):
        keyring.authenticate(make(keyring))  # type: ignore[operator]


def test_auth_off_lets_everyone_in_as_the_local_tenant() -> None:
    keyring = Keyring(load_settings(sidecar_auth="off"))
    assert keyring.authenticate("") == Principal("local")
    token = keyring.mint("local", "demo", 60, None).token
    assert keyring.authenticate(token) == Principal("local", "demo")


def test_owners() -> None:
    assert Principal("farm").owns("farm", "ann") and Principal("farm").owns("farm", "")
    assert Principal("farm", "ann").owns("farm", "ann")
    assert not Principal("farm", "ann").owns("farm", "bob")
    assert not Principal("farm").owns("council", "")


def test_budget_windows_roll_at_utc_midnight_and_month_start() -> None:
    settings = load_settings(sidecar_auth="off",
                             budgets='{"farm": {"usd_per_day": 2, "usd_per_month": 30}}')
    now = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    day, month, sday, smonth = budgets.windows(settings, "farm", "ann", 0.25, now)
    assert (day.limit, month.limit, sday.limit, smonth.limit) == (2, 30, 0.25, None)
    assert day.retry_after(now) == 3600 and month.retry_after(now) == 3600
    assert month.rolls_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert day.key != sday.key and "ann" in sday.key
    assert budgets.windows(settings, "council", None, None, now)[0].limit is None


def test_a_followers_done_is_its_own() -> None:
    leader = {"id": "lead", "type": "chat", "status": "succeeded", "model": "m",
              "priority": "interactive", "created_at": "t0", "cost_usd": "0.5",
              "result": '{"text": "hi"}'}
    follower = {**leader, "id": "mine", "status": "queued", "created_at": "t1", "leader": "lead"}
    frame = b"id: 9\nevent: done\ndata: " + json.dumps(mirror.view_of(leader, None)).encode()
    rewritten = mirror.done_frame(frame + b"\n\n", follower)
    assert rewritten.startswith(b"id: 9\nevent: done\n") and b"lead" not in rewritten
    data = json.loads(rewritten.split(b"data: ", 1)[1])
    assert data["id"] == "mine" and data["cost_usd"] == 0.0 and data["result"]["text"] == "hi"
    assert data["created_at"] == "t1" and data["links"]["self"] == "/api/jobs/mine"
