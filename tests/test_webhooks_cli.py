"""``voicemgmt webhook …`` run for real in a subprocess: subscribe (secret printed once),
list, show, disable, enable, rotate, read the log, redeliver; the platform administrator's
private-target switch; wrong input is one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import live_server, run_on, seed_two_accounts
from tests.test_cli import cli_env, voicemgmt
from tests.test_webhook_delivery import fast_retries, publish, subscribe
from tests.webhook_receiver import Receiver, wait_for
from voicemgmt.bootstrap import Container

URL_FLAG = "--url"


def run_json(env: dict[str, str], *args: str) -> Any:
    result = voicemgmt(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_webhook_commands(tmp_path: Path) -> None:
    env = cli_env(tmp_path, VM_WEBHOOKS_ALLOW_HTTP="true")
    made = voicemgmt(
        "account",
        "create",
        "--name",
        "Acme",
        "--login",
        "acme",
        "--password",
        "pw-123456",
        env=env,
    )
    assert made.returncode == 0, made.stderr
    refused = voicemgmt(
        "webhook", "add", "--account", "acme", URL_FLAG, "http://127.0.0.1:9/", env=env
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: url host 127.0.0.1 is")
    assert "Traceback" not in refused.stderr
    allowed = voicemgmt("webhook", "allow-private", "--account", "acme", "--allow", env=env)
    assert allowed.returncode == 0, allowed.stderr
    created = run_json(
        env,
        "webhook",
        "add",
        "--account",
        "acme",
        URL_FLAG,
        "http://127.0.0.1:9/",
        "--event",
        "call.ended",
        "--event",
        "call.offered",
    )
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["call.ended", "call.offered"]
    hook = str(created["id_webhook"])
    listed = run_json(env, "webhook", "list", "--account", "acme")
    assert [w["id_webhook"] for w in listed] == [created["id_webhook"]]
    assert "secret" not in listed[0]
    table = voicemgmt("webhook", "list", "--account", "acme", env=env)
    assert "http://127.0.0.1:9/" in table.stdout
    disabled = voicemgmt("webhook", "disable", "--account", "acme", "--id", hook, env=env)
    assert "disabled" in disabled.stdout
    shown = run_json(env, "webhook", "show", "--account", "acme", "--id", hook)
    assert shown["state"] == "disabled"
    assert shown["last_attempts"] == []
    voicemgmt("webhook", "enable", "--account", "acme", "--id", hook, env=env)
    rotated = run_json(env, "webhook", "rotate-secret", "--account", "acme", "--id", hook)
    assert rotated["secret"] != created["secret"]
    assert run_json(env, "webhook", "deliveries", "--account", "acme", "--id", hook) == []
    unknown = voicemgmt(
        "webhook", "redeliver", "--account", "acme", "--id", hook, "--delivery", "nope", env=env
    )
    assert (unknown.returncode, unknown.stderr.strip()) == (
        2,
        f"error: webhook {hook} has no delivery nope",
    )
    other = voicemgmt("webhook", "show", "--account", "acme", "--id", "99", env=env)
    assert (other.returncode, other.stderr.strip()) == (2, "error: no webhook 99")
    deleted = voicemgmt("webhook", "delete", "--account", "acme", "--id", hook, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert run_json(env, "webhook", "list", "--account", "acme") == []


def test_redelivery_from_the_cli_is_sent_by_the_server(tmp_path: Path) -> None:
    """The CLI queues; the running server sends (here: the next server to start)."""
    settings = fast_retries(tmp_path, "")
    acme, _ = seed_two_accounts(settings)

    async def allow(c: Container) -> None:
        await c.webhooks.allow_private_targets(acme.id, True)

    run_on(settings, allow)
    receiver = Receiver()
    receiver.start()
    try:
        with live_server(settings) as server:
            hook = subscribe(server, acme, receiver.url)
            publish(server, acme, ("call.held", {"id_call": "c1", "id_op": 1}))
            (first,) = wait_for(receiver.snapshot)
        assert settings.secret_key is not None
        env = cli_env(
            tmp_path,
            VM_WEBHOOKS_ALLOW_HTTP="true",
            VM_SECRET_KEY=settings.secret_key.get_secret_value(),
        )
        hook_id = str(hook["id_webhook"])
        log = run_json(env, "webhook", "deliveries", "--account", "acme", "--id", hook_id)
        assert [(d["id"], d["state"]) for d in log] == [(first.delivery_id, "delivered")]
        queued = run_json(
            env, "webhook", "redeliver", "--account", "acme",
            "--id", hook_id, "--delivery", first.delivery_id,
        )  # fmt: skip
        assert queued["state"] == "pending"
        with live_server(settings):
            wait_for(lambda: len(receiver.snapshot()) >= 2, what="the redelivery")
        assert receiver.snapshot()[1].delivery_id == first.delivery_id
    finally:
        receiver.stop()
