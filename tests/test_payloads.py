"""The callbacks confcall posts (sandbox, simulate-*) are Bandwidth's shapes, field for field."""

from __future__ import annotations

from typing import Any

import pytest
from fake_bandwidth import FIXTURES, fixture

from confcall import payloads, schema
from confcall.check import parse_application

ACCOUNT = {"account_id": "9900000", "application_id": "04e88489",
           "voice_api_url": "https://voice.bandwidth.com/api/v2"}


def keys(value: Any, prefix: str = "") -> set[str]:
    """Every field path in a payload, e.g. {"message", "message.id", …}."""
    found: set[str] = set()
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return keys(value[0], prefix)
    if isinstance(value, dict):
        for name, child in value.items():
            found.add(prefix + name)
            if isinstance(child, dict):
                found |= keys(child, f"{prefix}{name}.")
    return found


MESSAGE = {"id": "m-1", "time": "2026-01-01T00:00:00.000Z", "to": ["+12015550123"],
           "from": "+12015550100", "applicationId": "app", "tag": "7"}

CASES = [
    (payloads.message_received(sender="+12015550101", line="+12015550100", text="hi",
                               application_id="app"),
     "messaging-callback.smsMessageReceived.json", "inboundCallback"),
    (payloads.message_status(kind="message-delivered", message=MESSAGE,
                             recipient="+12015550123", description="Message delivered"),
     "messaging-callback.smsMessageDelivered.json", "statusCallback"),
    (payloads.initiate(call="c-1", caller="+12015550123", line="+12015550100", **ACCOUNT),
     "voice-callback.initiate.json", "initiateCallback"),
    (payloads.disconnect(call="c-1", caller="+12015550123", line="+12015550100", **ACCOUNT),
     "voice-callback.disconnect.json", "disconnectCallback"),
    (payloads.answer(call="c-1", callee="+12015550123", line="+12015550100", tag="confcall-1",
                     **ACCOUNT),
     "voice-callback.answer.json", "answerCallback"),
    *[(payloads.conference_event(kind, conference="conf-1", name="confcall-1", tag="confcall-1",
                                 call="c-1", caller="+12015550123", line="+12015550100"),
       f"voice-callback.{kind}.json", f"{kind}Callback")
      for kind in ("conferenceMemberJoin", "conferenceMemberExit")],
    *[(payloads.conference_event(kind, conference="conf-1", name="confcall-1", tag="confcall-1"),
       f"voice-callback.{kind}.json", f"{kind}Callback")
      for kind in ("conferenceCreated", "conferenceCompleted")],
]


@pytest.mark.parametrize(("built", "example", "schema_name"), CASES,
                         ids=[case[1] for case in CASES])
def test_built_callbacks_match_bandwidths(built: Any, example: str, schema_name: str) -> None:
    theirs = fixture(example)
    assert type(built) is type(theirs)  # messaging callbacks are arrays, voice ones objects
    # the spec's answerCallback has machineDetectionResult; the example leaves it out
    invented = keys(built) - keys(theirs) - {
        "message.tag", "machineDetectionResult", "machineDetectionResult.value",
        "machineDetectionResult.duration"}
    assert not invented, f"fields Bandwidth does not send: {invented}"
    body = built[0] if isinstance(built, list) else built
    assert schema.problems(schema_name, body) == []


def test_times_are_bandwidths_format() -> None:
    assert payloads.timestamp(0) == "1970-01-01T00:00:00.000Z"


def test_the_sandbox_describes_applications_as_the_account_api_does() -> None:
    from confcall.config import load_config
    from confcall.sandbox import Sandbox

    config = load_config(None, {}, {"server.callback_username": "confcall",
                                    "server.callback_password": "p"})
    sandbox = Sandbox(config)
    for kind, application_id in (("messaging", config.bandwidth.messaging_application_id),
                                 ("voice", config.bandwidth.voice_application_id)):
        ours = parse_application(sandbox.describe(str(application_id)) or "")
        theirs = parse_application(
            (FIXTURES / f"applications-response.{kind}.xml").read_text())
        assert ours.service_type == theirs.service_type
        assert set(theirs.settings) - set(ours.settings) <= {"RequestedCallbackTypes",
                                                             "CallbackTimeout"}
