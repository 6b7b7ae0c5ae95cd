"""docs/webhooks.md's signature verification examples, run as written on real deliveries:
the Python one in this interpreter, the JavaScript one under Node."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import LiveServer, SeededAccount, live_server, run_on, seed_two_accounts
from tests.test_webhook_delivery import fast_retries, publish, subscribe
from tests.webhook_receiver import Received, Receiver, wait_for
from voicemgmt.bootstrap import Container

DOC = Path(__file__).resolve().parents[1] / "docs" / "webhooks.md"
NODE = shutil.which("node") or "/usr/bin/node"


def code_block(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1, f"docs/webhooks.md should have one {language} block"
    return str(blocks[0])


@pytest.fixture(scope="module")
def signed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[Received], str, str]]:
    """Real deliveries, the last one signed during a rotation: (deliveries, old, new secret)."""
    settings = fast_retries(tmp_path_factory.mktemp("webhooks-docs"), "")
    acme, _ = seed_two_accounts(settings)

    async def allow(c: Container) -> None:
        await c.webhooks.allow_private_targets(acme.id, True)

    run_on(settings, allow)
    receiver = Receiver()
    receiver.start()
    try:
        with live_server(settings) as server:
            hook = subscribe(server, acme, receiver.url)
            publish(server, acme, ("call.held", {"id_call": "c1", "id_op": 1, "é": "ü"}))
            wait_for(receiver.snapshot)
            new_secret = rotate(server, acme, hook["id_webhook"])
            publish(server, acme, ("call.resumed", {"id_call": "c1", "id_op": 1}))
            wait_for(lambda: len(receiver.snapshot()) >= 2)
        yield receiver.snapshot(), hook["secret"], new_secret
    finally:
        receiver.stop()


def rotate(server: LiveServer, account: SeededAccount, id_webhook: int) -> str:
    with server.client() as client:
        answer = client.post(f"/api/v1/webhooks/{id_webhook}/rotate-secret", auth=account.auth)
    assert answer.status_code == 200, answer.text
    secret: str = answer.json()["secret"]
    return secret


def cases(delivered: list[Received], old: str, new: str) -> list[tuple[dict[str, Any], bool]]:
    """(secret, header, body, now) and whether the example must accept it."""
    first, rotated = delivered[0], delivered[1]
    t_first = int(first.headers["vm-webhook-timestamp"])
    t_rotated = int(rotated.headers["vm-webhook-timestamp"])

    def case(item: Received, secret: str, now: int, body: bytes | None = None) -> dict[str, Any]:
        return {
            "secret": secret,
            "header": item.headers["vm-webhook-signature"],
            "body": item.body if body is None else body,
            "now": now,
        }

    return [
        (case(first, old, t_first), True),
        (case(first, old, t_first + 299), True),
        (case(first, old, t_first + 301), False),  # too old: a replay
        (case(first, new, t_first), False),  # signed before the rotation
        (case(first, old, t_first, first.body.replace(b'"c1"', b'"c2"')), False),
        (case(first, "whsec_wrong", t_first), False),
        (case(rotated, old, t_rotated), True),  # both secrets sign during the rotation
        (case(rotated, new, t_rotated), True),
    ]


def test_the_python_example_verifies_real_deliveries(
    signed: tuple[list[Received], str, str],
) -> None:
    namespace: dict[str, Any] = {}
    exec(code_block("python"), namespace)  # noqa: S102 (the documented code, verbatim)
    verify: Callable[..., bool] = namespace["verify_webhook"]
    delivered, old, new = signed
    assert delivered[1].headers["vm-webhook-signature"].count("v1=") == 2
    for given, expected in cases(delivered, old, new):
        result = verify(given["secret"], given["header"], given["body"], now=given["now"])
        assert result is expected, given


def test_the_javascript_example_verifies_real_deliveries(
    signed: tuple[list[Received], str, str], tmp_path: Path
) -> None:
    if not Path(NODE).exists():
        pytest.fail("node is needed to run the JavaScript example")
    (tmp_path / "verify.js").write_text(code_block("javascript"))
    (tmp_path / "run.js").write_text(
        """
const { verifyWebhook } = require("./verify.js");
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map((c) =>
  verifyWebhook(c.secret, c.header, Buffer.from(c.body, "base64"), 300, c.now))));
"""
    )
    delivered, old, new = signed
    checks = cases(delivered, old, new)
    given = [{**c, "body": base64.b64encode(c["body"]).decode()} for c, _expected in checks]
    run = subprocess.run(
        [NODE, str(tmp_path / "run.js")],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(run.stdout) == [expected for _c, expected in checks]
