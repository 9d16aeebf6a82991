"""The Bandwidth API client: texts, conference updates and account reads, over one session."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from confcall.auth import basic_auth
from confcall.config import BandwidthConfig
from confcall.errors import BandwidthError, BandwidthUnavailable


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


@dataclass(frozen=True)
class BandwidthConference:
    id: str
    name: str
    created: str | None
    completed: str | None


# A request that never left this machine cannot have been acted on; any other failure to
# hear the answer may follow an acceptance.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


class BandwidthClient:
    """Bandwidth's Messaging v2, Voice v2 and account APIs; base URLs come from config.

    Only Bandwidth's own success counts: redirects are not followed (a redirected POST
    becomes a GET whose answer proves nothing), and a success must carry Bandwidth's
    shape; anything else is a BandwidthError with the answer in it."""

    def __init__(self, session: aiohttp.ClientSession, config: BandwidthConfig,
                 timeout: float = 10.0) -> None:
        self.session = session
        self.config = config
        self.headers = {"Authorization": basic_auth(config.username, config.password)}
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _request(self, method: str, url: str, *, json_body: Any = None,
                       params: dict[str, str] | None = None,
                       xml_body: str | None = None) -> tuple[int, str]:
        headers = self.headers
        data = None
        if xml_body is not None:
            headers = {**headers, "Content-Type": "application/xml; charset=utf-8"}
            data = xml_body.encode()
        try:
            async with self.session.request(
                method, url, json=json_body, data=data, params=params, headers=headers,
                timeout=self.timeout, allow_redirects=False,
            ) as response:
                body = await response.text(errors="replace")
                if response.status >= 300:
                    if response.status < 400:
                        body = f"redirected to {response.headers.get('Location', '?')}"
                    raise BandwidthError(response.status, body,
                                         _retry_after(response.headers.get("Retry-After")))
                return response.status, body
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = type(exc).__name__ if isinstance(exc, asyncio.TimeoutError) else str(exc)
            raise BandwidthUnavailable(f"{method} {url}: {reason or type(exc).__name__}",
                                       maybe_accepted=not isinstance(exc, _NOT_SENT)) from None

    async def send_message(self, *, application_id: str, to: list[str], text: str,
                           tag: str, media: list[str] | None = None) -> str:
        """Send one text (to several numbers: one group message; with `media`, an MMS);
        returns Bandwidth's id."""
        url = f"{self.config.messaging_api_url}/users/{self.config.account_id}/messages"
        body: dict[str, Any] = {"applicationId": application_id, "to": to,
                                "from": self.config.phone_number, "text": text, "tag": tag}
        if media:
            body["media"] = media
        status, answer = await self._request("POST", url, json_body=body)
        try:
            message = json.loads(answer)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("id"), str) or (
                not message["id"].strip()):
            raise BandwidthError(status, answer[:1000], malformed=True)
        return str(message["id"])

    async def create_call(self, *, to: str, application_id: str, answer_url: str,
                          disconnect_url: str, tag: str,
                          credentials: tuple[str, str] | None = None) -> str:
        """Call `to` from this line; when someone answers, Bandwidth asks `answer_url` what
        to do, after its machine detection (`sync`): a voicemail is not put into a
        conference. Returns the call's id."""
        url = f"{self.config.voice_api_url}/accounts/{self.config.account_id}/calls"
        body: dict[str, Any] = {
            "to": to, "from": self.config.phone_number, "applicationId": application_id,
            "answerUrl": answer_url, "answerMethod": "POST",
            "disconnectUrl": disconnect_url, "disconnectMethod": "POST",
            "callTimeout": 30, "tag": tag,
            "machineDetection": {"mode": "sync", "detectionTimeout": 15,
                                 "silenceTimeout": 10, "speechThreshold": 10,
                                 "speechEndThreshold": 5, "delayResult": False},
        }
        if credentials is not None:
            body["username"], body["password"] = credentials
        status, answer = await self._request("POST", url, json_body=body)
        try:
            call = json.loads(answer)
        except ValueError:
            call = None
        if not isinstance(call, dict) or not isinstance(call.get("callId"), str):
            raise BandwidthError(status, answer[:1000], malformed=True)
        return str(call["callId"])

    async def complete_conference(self, conference_id: str) -> None:
        """End a conference: every member's call goes on to the verbs after <Conference>."""
        url = (f"{self.config.voice_api_url}/accounts/{self.config.account_id}"
               f"/conferences/{conference_id}")
        status, answer = await self._request("POST", url, json_body={"status": "completed"})
        if status != 204 and answer.strip():  # Bandwidth answers 204 No Content
            raise BandwidthError(status, answer[:1000], malformed=True)

    async def find_conferences(self, name: str) -> list[BandwidthConference]:
        url = f"{self.config.voice_api_url}/accounts/{self.config.account_id}/conferences"
        status, answer = await self._request("GET", url, params={"name": name})
        try:
            items = json.loads(answer)
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise BandwidthError(status, answer[:1000], malformed=True)
        return [
            BandwidthConference(str(item.get("id")), str(item.get("name")),
                                item.get("createdTime"), item.get("completedTime"))
            for item in items if isinstance(item, dict) and item.get("id")
        ]

    def _application_url(self, application_id: str = "") -> str:
        base = f"{self.config.account_api_url}/accounts/{self.config.account_id}/applications"
        return f"{base}/{quote(application_id, safe='')}" if application_id else base

    @asynccontextmanager
    async def media(self, url: str,
                    byte_range: str | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """A recording's media from Bandwidth, as a response to stream from (the caller
        checks that `url` is Bandwidth's)."""
        headers = dict(self.headers)
        if byte_range:
            headers["Range"] = byte_range
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout.total,
                                        sock_read=60)
        async with self.session.get(url, headers=headers, timeout=timeout,
                                    allow_redirects=False) as response:
            yield response

    async def get_application(self, application_id: str) -> str:
        """The account API's XML description of one application."""
        _, answer = await self._request("GET", self._application_url(application_id))
        return answer

    async def list_applications(self) -> str:
        """The account API's XML list of every application on the account."""
        _, answer = await self._request("GET", self._application_url())
        return answer

    async def update_application(self, application_id: str, document: str) -> str:
        """Replace one application's settings with `document`, an <Application> element
        holding every setting it is to keep (a PUT replaces them all); returns the account
        API's answer, the application as now stored."""
        _, answer = await self._request("PUT", self._application_url(application_id),
                                        xml_body=document)
        return answer
