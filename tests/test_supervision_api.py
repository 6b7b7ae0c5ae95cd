"""The supervisor's reading API (/api/v1/supervision/figures, charts, call-records) through the
running server: it agrees with the account's own reports, keeps to its account and role, and
refuses bad input precisely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import LiveServer, SeededAccount, bearer, make_settings, token_for
from tests.test_calls_api import FAST, Operator, eventually, place_call
from voicemgmt.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", **FAST)


def supervisor(server: LiveServer, account: SeededAccount) -> httpx.Client:
    token = token_for(server, account, id_admin=account.id_admin)
    return server.client(headers=bearer(token))


def some_calls(server: LiveServer, acme: SeededAccount) -> None:
    """One answered call (Ana, about 0.3 s of talk), one abandoned in the queue, one missed."""
    with server.client() as client:
        settings = {"settings": {"when_empty": "missed"}}
        changed = client.patch(f"/api/v1/groups/{acme.id_group}", auth=acme.auth, json=settings)
        assert changed.status_code == 200, changed.text
    ana = Operator(server, acme, acme.id_agent)
    try:
        assert ana.status("online").status_code == 200
        answered = place_call(server, acme)
        call_id = ana.ringing_call()
        assert call_id == answered
        assert ana.act(call_id, "answer").status_code == 200
        place_call(server, acme, hangup_after=0.2)  # Ana is in a call: this one waits, gives up
        eventually(lambda: count(server, acme) == 1)
        assert ana.act(call_id, "hangup").status_code == 200
        assert ana.status("offline").status_code == 200
        place_call(server, acme)  # nobody logged in: missed at once
        eventually(lambda: count(server, acme) == 3)
    finally:
        ana.http.close()


def count(server: LiveServer, account: SeededAccount) -> int:
    with server.client() as client:
        return len(client.get("/api/v1/call-records", auth=account.auth).json()["items"])


def test_figures_charts_and_records_agree_with_the_accounts_reports(
    server: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    some_calls(server, acme)
    with supervisor(server, acme) as sam, server.client() as client:
        mine = sam.get("/api/v1/supervision/figures", params={"service_level": 30})
        account = client.get("/api/v1/figures?service_level=30", auth=acme.auth)
        assert mine.status_code == 200, mine.text
        figures: dict[str, Any] = mine.json()
        assert figures["groups"] == account.json()["groups"]
        total = figures["groups"][-1]
        assert (total["offered"], total["answered"], total["abandoned"], total["missed"]) == (
            3,
            1,
            1,
            1,
        )
        ((ana,),) = [[o for o in figures["operators"] if o["id_op"] == acme.id_agent]]
        assert ana["answered"] == 1
        assert ana["talk"] > 0
        assert len(figures["operators"]) == 1

        charts = sam.get("/api/v1/supervision/charts").json()
        assert charts["bucket_seconds"] == 900
        outcomes = ("answered", "abandoned", "missed", "overflowed", "failed")
        assert sum(b[o] for b in charts["buckets"] for o in outcomes) == 3
        assert sum(w["calls"] for w in charts["wait"]) == 2  # the missed one never queued
        listed = sam.get("/api/v1/supervision/call-records", params={"limit": 2}).json()
        assert listed["total"] == 3
        records = listed["items"]
        assert records[0]["display"]["caller_number"] == "+33 6 12 34 56 78"
        for record in records:
            del record["display"]
        every = client.get("/api/v1/call-records", auth=acme.auth).json()["items"]
        assert records == every[:2]
        answered = sam.get("/api/v1/supervision/call-records", params={"outcome": "answered"})
        assert [r["id_op"] for r in answered.json()["items"]] == [acme.id_agent]
        csv = sam.get("/api/v1/supervision/call-records", params={"format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert len(csv.text.strip().splitlines()) == 4  # a header and three calls

    with supervisor(server, globex) as other:  # another account sees none of it
        assert other.get("/api/v1/supervision/call-records").json()["items"] == []
        assert other.get("/api/v1/supervision/figures").json()["groups"][-1]["offered"] == 0
        assert other.get("/api/v1/supervision/figures").json()["operators"] == []


def test_a_window_in_the_supervisors_time_zone_is_honoured(
    server: LiveServer, acme: SeededAccount
) -> None:
    some_calls(server, acme)
    now = datetime.now(UTC)
    with supervisor(server, acme) as sam:
        tomorrow = (now + timedelta(days=1)).isoformat()
        later = (now + timedelta(days=2)).isoformat()
        empty = sam.get("/api/v1/supervision/charts", params={"since": tomorrow, "until": later})
        assert sum(w["calls"] for w in empty.json()["wait"]) == 0
        local_midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
        hours = sam.get(
            "/api/v1/supervision/charts",
            params={"since": local_midnight.isoformat(), "bucket": 3600},
        ).json()
        assert hours["buckets"][0]["start"] == local_midnight.astimezone(UTC).isoformat(
            timespec="milliseconds"
        ).replace("+00:00", "Z")
        assert sum(b["answered"] for b in hours["buckets"]) == 1


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("figures", {"service_level": "0"}, "service_level"),
        ("figures", {"service_level": "3601"}, "service_level"),
        ("figures", {"service_level": "nan"}, "service_level"),
        ("figures", {"since": "yesterday"}, "since"),
        ("charts", {"bucket": "59"}, "bucket"),
        ("charts", {"bucket": "86401"}, "bucket"),
        ("charts", {"bucket": "15m"}, "bucket"),
        ("charts", {"id_group": "0"}, "id_group"),
        ("charts", {"id_group": str(2**31)}, "id_group"),
        ("call-records", {"outcome": "lost"}, "outcome"),
        ("call-records", {"limit": "1001"}, "limit"),
        ("call-records", {"format": "xml"}, "format"),
        ("call-records", {"id_op": "-1"}, "id_op"),
        ("call-records", {"until": "2026-13-40"}, "until"),
        # Numbers are plain digits: int() and pydantic's lax mode took all of these.
        ("figures", {"service_level": "2_0"}, "service_level"),
        ("figures", {"service_level": " 20"}, "service_level"),
        ("charts", {"bucket": "9_00"}, "bucket"),
        ("charts", {"bucket": "900.0"}, "bucket"),
        ("charts", {"bucket": "+900"}, "bucket"),
        ("charts", {"bucket": "\u0669\u0660\u0660"}, "bucket"),  # Arabic-Indic 900
        ("call-records", {"limit": "1_0"}, "limit"),
        ("call-records", {"offset": " 0"}, "offset"),
    ],
)
def test_bad_query_parameters_get_a_precise_400(
    server: LiveServer, acme: SeededAccount, path: str, params: dict[str, str], field: str
) -> None:
    with supervisor(server, acme) as sam:
        answer = sam.get(f"/api/v1/supervision/{path}", params=params)
    assert answer.status_code in (400, 422), answer.text
    assert field in answer.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "since must be"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "at most 31 days"),
        (
            {"since": "2026-11-01T00:00:00Z", "until": "2026-11-30T00:00:00Z", "bucket": "60"},
            "at most 3000 buckets",
        ),
    ],
)
def test_impossible_windows_are_refused(
    server: LiveServer, acme: SeededAccount, params: dict[str, str], message: str
) -> None:
    with supervisor(server, acme) as sam:
        answer = sam.get("/api/v1/supervision/charts", params=params)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["err_msg"]


def test_an_oversized_query_is_refused_without_harm(
    server: LiveServer, acme: SeededAccount
) -> None:
    with supervisor(server, acme) as sam:
        answer = sam.get("/api/v1/supervision/call-records", params={"outcome": "x" * 20_000})
        assert 400 <= answer.status_code < 500
        assert sam.get("/api/v1/supervision/figures").status_code == 200


@pytest.mark.parametrize("path", ["figures", "charts", "call-records", "live"])
def test_only_a_supervisors_token_reads_supervision(
    server: LiveServer, acme: SeededAccount, path: str
) -> None:
    operator = token_for(server, acme, id_agent=acme.id_agent)
    with server.client() as client:
        as_operator = client.get(f"/api/v1/supervision/{path}", headers=bearer(operator))
        assert as_operator.status_code == 403
        assert as_operator.json()["err_code"] == "forbidden"
        assert client.get(f"/api/v1/supervision/{path}").status_code == 401
        forged = client.get(f"/api/v1/supervision/{path}", headers=bearer("x" * 43))
        assert forged.status_code == 401
        basic = client.get(f"/api/v1/supervision/{path}", auth=acme.auth)
        assert basic.status_code == 401
