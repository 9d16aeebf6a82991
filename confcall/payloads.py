"""Bandwidth-shaped callback bodies, field for field as Bandwidth sends them. Pure builders:
the sandbox and `confcall simulate-*` post these; tests check them against the spec."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any


def timestamp(at: float | None = None) -> str:
    """Bandwidth's time format: ISO 8601 in UTC with milliseconds and a Z."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def message_id() -> str:
    return f"{int(time.time() * 1000)}{secrets.token_hex(8)[:15]}"


def call_id() -> str:
    return f"c-{uuid.uuid4()}"


def recording_id() -> str:
    return f"r-{uuid.uuid4()}"


def conference_id() -> str:
    return f"conf-{uuid.uuid4()}"


def message_received(*, sender: str, line: str, text: str, application_id: str,
                     at: float | None = None) -> list[dict[str, Any]]:
    """A `message-received` callback: always a JSON array, here of one event."""
    when = timestamp(at)
    return [{
        "time": when,
        "type": "message-received",
        "to": line,
        "description": "Incoming message received",
        "message": {
            "id": message_id(),
            "owner": line,
            "applicationId": application_id,
            "time": when,
            "segmentCount": 1,
            "direction": "in",
            "to": [line],
            "from": sender,
            "text": text,
        },
    }]


def message_status(*, kind: str, message: dict[str, Any], recipient: str,
                   description: str, error_code: int | None = None) -> list[dict[str, Any]]:
    """A status callback (`message-delivered`, `message-failed`…) for a message we sent."""
    event: dict[str, Any] = {
        "type": kind,
        "time": timestamp(),
        "description": description,
        "to": recipient,
        "message": {
            "id": message["id"],
            "time": message["time"],
            "to": message["to"],
            "from": message["from"],
            "text": "",
            "applicationId": message["applicationId"],
            "owner": message["from"],
            "direction": "out",
            "segmentCount": 1,
        },
    }
    if "tag" in message:
        event["message"]["tag"] = message["tag"]
    if error_code is not None:
        event["errorCode"] = error_code
    return [event]


def _call(kind: str, *, call: str, caller: str, line: str, account_id: str,
          application_id: str, voice_api_url: str) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": timestamp(),
        "accountId": account_id,
        "applicationId": application_id,
        "from": caller,
        "to": line,
        "direction": "inbound",
        "callId": call,
        "callUrl": f"{voice_api_url}/accounts/{account_id}/calls/{call}",
        "startTime": timestamp(),
    }


def initiate(*, call: str, caller: str, line: str, account_id: str, application_id: str,
             voice_api_url: str) -> dict[str, Any]:
    """An `initiate` callback: someone called the Bandwidth number."""
    return _call("initiate", call=call, caller=caller, line=line, account_id=account_id,
                 application_id=application_id, voice_api_url=voice_api_url)


def answer(*, call: str, callee: str, line: str, account_id: str, application_id: str,
           voice_api_url: str, tag: str | None, machine: str = "human") -> dict[str, Any]:
    """An `answer` callback: `callee` picked up a call placed from `line` (with the result
    of Bandwidth's machine detection)."""
    body = _call("answer", call=call, caller=line, line=callee, account_id=account_id,
                 application_id=application_id, voice_api_url=voice_api_url)
    body.update(direction="outbound", answerTime=body["eventTime"],
                machineDetectionResult={"value": machine, "duration": "PT1.5S"})
    if tag is not None:
        body["tag"] = tag
    return body


def disconnect(*, call: str, caller: str, line: str, account_id: str, application_id: str,
               voice_api_url: str, cause: str = "hangup") -> dict[str, Any]:
    """A `disconnect` callback: the call ended."""
    body = _call("disconnect", call=call, caller=caller, line=line, account_id=account_id,
                 application_id=application_id, voice_api_url=voice_api_url)
    body["endTime"] = body["eventTime"]
    body["cause"] = cause
    return body


def conference_event(kind: str, *, conference: str, name: str, tag: str | None,
                     call: str | None = None, caller: str | None = None,
                     line: str | None = None) -> dict[str, Any]:
    """conferenceCreated / conferenceMemberJoin / conferenceMemberExit / conferenceCompleted."""
    body: dict[str, Any] = {
        "eventType": kind,
        "eventTime": timestamp(),
        "conferenceId": conference,
        "name": name,
    }
    if call is not None:
        body.update({"from": caller, "to": line, "callId": call})
    if tag is not None:
        body["tag"] = tag
    return body


def recording_available(*, conference: str, name: str, tag: str | None, account_id: str,
                        recording: str, media_url: str, started: str,
                        ended: str | None) -> dict[str, Any]:
    """A `conferenceRecordingAvailable` callback: a conference's recording is ready."""
    body: dict[str, Any] = {
        "eventType": "conferenceRecordingAvailable",
        "eventTime": timestamp(),
        "conferenceId": conference,
        "name": name,
        "accountId": account_id,
        "recordingId": recording,
        "channels": 1,
        "startTime": started,
        "endTime": ended or timestamp(),
        "duration": "PT1S",
        "fileFormat": "wav",
        "mediaUrl": media_url,
        "status": "complete",
    }
    if tag is not None:
        body["tag"] = tag
    return body
