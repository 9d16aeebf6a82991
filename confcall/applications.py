"""Bandwidth's applications as the account API writes them (XML): reading one or a list, and
rewriting only the settings confcall owns while every other byte stays as Bandwidth sent it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from confcall.config import Config
from confcall.errors import BandwidthError, ConfcallError

MESSAGING_V2 = "Messaging-V2"
VOICE_V2 = "Voice-V2"


@dataclass(frozen=True)
class Application:
    """What the account API says of one application (a credentials element reads as its
    UserId: Bandwidth never returns the password)."""

    service_type: str
    settings: dict[str, str]

    def get(self, name: str) -> str:
        return self.settings.get(name, "")

    @property
    def id(self) -> str:
        return self.get("ApplicationId")

    @property
    def name(self) -> str:
        return self.get("AppName")


@dataclass(frozen=True)
class Role:
    """One of the two applications confcall needs, and the settings it owns in it."""

    name: str  # "messaging" or "voice"
    service_type: str
    key: str  # the config key holding its id
    option: str  # `confcall setup`'s option for its id
    url_setting: str  # the callback URL that identifies it as confcall's
    routes: dict[str, str]  # URL setting -> confcall route
    methods: tuple[str, ...]  # HTTP method settings, always POST
    credentials: tuple[str, ...]  # credentials elements: UserId and Password
    # Elements Bandwidth still returns under an older name: kept in step when present
    aliases: dict[str, str] = field(default_factory=dict)
    # The order of elements in Bandwidth's documentation; a missing element is added
    # after the last one present that comes before it
    order: tuple[str, ...] = ()

    def owned(self) -> tuple[str, ...]:
        """Every element confcall writes, in the order they are shown."""
        urls = tuple(self.routes)
        if self.methods:  # voice: each method after its URL
            return (urls[0], self.methods[0], urls[1], self.methods[1], *self.credentials)
        return (*urls, *self.credentials)


MESSAGING = Role(
    name="messaging", service_type=MESSAGING_V2, key="bandwidth.messaging_application_id",
    option="--messaging-app", url_setting="InboundCallbackUrl",
    routes={"InboundCallbackUrl": "/callbacks/messaging",
            "OutboundCallbackUrl": "/callbacks/messaging"},
    methods=(), credentials=("InboundCallbackCreds", "OutboundCallbackCreds"),
    aliases={"MsgCallbackUrl": "InboundCallbackUrl", "MsgCallbackCreds": "InboundCallbackCreds"},
    order=("ApplicationId", "ServiceType", "AppName", "MsgCallbackUrl", "InboundCallbackUrl",
           "OutboundCallbackUrl", "MsgCallbackCreds", "InboundCallbackCreds",
           "OutboundCallbackCreds", "RequestedCallbackTypes"),
)
VOICE = Role(
    name="voice", service_type=VOICE_V2, key="bandwidth.voice_application_id",
    option="--voice-app", url_setting="CallInitiatedCallbackUrl",
    routes={"CallInitiatedCallbackUrl": "/callbacks/voice/initiate",
            "CallStatusCallbackUrl": "/callbacks/voice/status"},
    methods=("CallInitiatedMethod", "CallStatusMethod"), credentials=("CallbackCreds",),
    order=("ApplicationId", "ServiceType", "AppName", "CallInitiatedCallbackUrl",
           "CallInitiatedMethod", "CallStatusCallbackUrl", "CallStatusMethod", "CallbackCreds",
           "CallInitiatedFallbackUrl", "CallInitiatedFallbackMethod",
           "CallInitiatedFallbackCreds", "CallbackTimeout"),
)
ROLES = (MESSAGING, VOICE)


# --- reading ------------------------------------------------------------------------------


def _parse(document: str) -> Any:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        return fromstring(document, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise BandwidthError(
            200, f"the account API answered with XML we cannot read: {exc}") from None


def _application(element: Any) -> Application:
    settings = {}
    for child in element:
        if len(child):  # e.g. <CallbackCreds><UserId>…</UserId></CallbackCreds>
            settings[child.tag] = (child.findtext("UserId") or "").strip()
        else:
            settings[child.tag] = (child.text or "").strip()
    return Application(settings.get("ServiceType", ""), settings)


def parse_application(document: str) -> Application:
    """The account API's ApplicationProvisioningResponse for one application."""
    root = _parse(document)
    element = root if root.tag == "Application" else root.find("Application")
    if element is None:
        raise BandwidthError(200, "the account API's answer has no <Application>")
    return _application(element)


def parse_application_list(document: str) -> list[Application]:
    """The account API's list of every application on the account."""
    root = _parse(document)
    listed = root.find("ApplicationList")
    return [_application(element) for element in (listed if listed is not None else [])
            if element.tag == "Application"]


def account_error(exc: BandwidthError) -> str:
    """Bandwidth's reason for an error answer, in one line."""
    reason = ""
    try:
        root = _parse(exc.body)
        reason = " ".join(text.strip() for text in (root.findtext(".//ErrorCode"),
                                                    root.findtext(".//Description")) if text)
    except BandwidthError:
        pass
    reason = reason or " ".join(exc.body.split())[:200]
    return f"Bandwidth answered {exc.status}" + (f": {reason}" if reason else "")


# --- what confcall wants in each application ----------------------------------------------


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


Wanted = dict[str, "str | Credentials"]


def wanted(role: Role, config: Config, credentials: Credentials) -> Wanted:
    """The value of every element confcall owns in the `role` application."""
    values: Wanted = {}
    for setting in role.owned():
        if setting in role.routes:
            values[setting] = config.callback_url(role.routes[setting])
        elif setting in role.methods:
            values[setting] = "POST"
        else:
            values[setting] = credentials
    return values


@dataclass(frozen=True)
class Change:
    """One row of the before/after table: never a password."""

    setting: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _shown(value: str | Credentials) -> str:
    if isinstance(value, Credentials):
        return f"user {value.user} + password"  # the password Bandwidth holds is unknown
    return value


def _before(application: Application, name: str, value: str | Credentials) -> str:
    if name not in application.settings:
        return "not set"
    current = application.get(name)
    if isinstance(value, Credentials):
        return f"user {current}" if current else "no user"
    return current


# --- rewriting: splice new elements into the text Bandwidth sent --------------------------

# Markup in a document defusedxml has accepted (so no DTD and no entity declarations):
# comments, CDATA, processing instructions, end tags and start tags, whose quoted
# attribute values may hold '>'
_MARKUP = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>"
    r"|</(?P<end>[^\s>]+)\s*>"
    r"|<(?P<start>[^\s/>!?]+)(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*(?P<empty>/?)>",
    re.S,
)


@dataclass(frozen=True)
class _Span:
    name: str
    start: int
    end: int


@dataclass(frozen=True)
class _Layout:
    """Where the <Application> element and each of its children lie in the text."""

    start: int  # of <Application>
    open_end: int  # just after <Application>
    close_start: int  # of </Application>
    end: int  # just after </Application>
    children: list[_Span]


class _Unreadable(ConfcallError):
    pass


def _layout(document: str) -> _Layout:
    stack: list[tuple[str, int]] = []
    found: tuple[int, int, int] | None = None  # start, open end, depth of <Application>
    children: list[_Span] = []
    for match in _MARKUP.finditer(document):
        name = match["start"]
        if name is not None:
            inside = found is not None and len(stack) == found[2]
            if match["empty"]:
                if inside:
                    children.append(_Span(name, match.start(), match.end()))
                elif name == "Application" and found is None and len(stack) <= 1:
                    raise _Unreadable("the application is empty")
                continue
            stack.append((name, match.start()))
            if name == "Application" and found is None and len(stack) <= 2:
                found = (match.start(), match.end(), len(stack))
            continue
        end = match["end"]
        if end is None:
            continue  # comment, CDATA or processing instruction
        if not stack or stack[-1][0] != end:
            raise _Unreadable(f"</{end}> closes nothing open")
        name, start = stack.pop()
        if found is not None and len(stack) == found[2]:
            children.append(_Span(name, start, match.end()))
        elif found is not None and len(stack) == found[2] - 1:
            return _Layout(found[0], found[1], match.start(), match.end(), children)
    raise _Unreadable("no <Application> element")


def _rendered(name: str, value: str | Credentials, separator: str, step: str) -> str:
    if not isinstance(value, Credentials):
        return f"<{name}>{escape(value)}</{name}>"
    inner = separator + step if separator else ""
    return (f"<{name}>{inner}<UserId>{escape(value.user)}</UserId>"
            f"{inner}<Password>{escape(value.password)}</Password>{separator}</{name}>")


def _whitespace_before(document: str, position: int) -> str:
    """The indentation of the line `position` is on, when only whitespace precedes it."""
    line_start = document.rfind("\n", 0, position) + 1
    lead = document[line_start:position]
    return lead if lead.strip() == "" else ""


def rewrite(document: str, role: Role, values: Wanted) -> tuple[str, list[Change]]:
    """The PUT body for the application in `document` (the account API's answer for it):
    its <Application> element with the elements in `values` replaced or added, and every
    other element, comment and space exactly as Bandwidth sent them; and what changes."""
    tree = _parse(document)
    element = tree if tree.tag == "Application" else tree.find("Application")
    if element is None:
        raise BandwidthError(200, "the account API's answer has no <Application>")
    parsed = _application(element)
    try:
        layout = _layout(document)
    except _Unreadable as exc:
        raise ConfcallError(f"cannot edit application {parsed.id or '?'}: {exc}") from None
    names = [span.name for span in layout.children]
    if names != [child.tag for child in element]:  # the splice must see what the parser saw
        raise ConfcallError(f"cannot edit application {parsed.id or '?'}: its XML is laid "
                            "out in a way confcall does not rewrite safely")

    values = dict(values)
    for alias, setting in role.aliases.items():
        if alias in names:
            values[alias] = values[setting]
    owned = set(values)
    for child in element:
        if child.tag.endswith("Creds") and child.tag not in owned:
            # A complete update replaces every field, and Bandwidth never returns passwords:
            # sent back as read, these credentials would lose theirs
            raise ConfcallError(
                f"application {parsed.id} has {child.tag}, whose password Bandwidth does not "
                "return: writing the application would drop it. Remove them in the Bandwidth "
                "dashboard, run setup, then set them again")
    twice = sorted({name for name in names if name in owned and names.count(name) > 1})
    if twice:
        raise ConfcallError(f"application {parsed.id} has {twice[0]} more than once")

    # Layout: each child starts a line at `indent`; the application's own line gives `step`
    first = layout.children[0].start if layout.children else layout.close_start
    indent = _whitespace_before(document, first)
    newline = "\r\n" if "\r\n" in document else "\n"
    separator = newline + indent if indent or document[:first].endswith("\n") else ""
    outer = _whitespace_before(document, layout.start)
    step = indent[len(outer):] if indent.startswith(outer) and indent != outer else "    "

    changes = [Change(name, _before(parsed, name, value), _shown(value))
               for name, value in values.items()]

    inserts: dict[int, list[str]] = {}  # position in the text -> elements added there
    for name in role.owned():
        if name in names:
            continue
        rank = role.order.index(name) if name in role.order else len(role.order)
        earlier = [span for span in layout.children
                   if span.name in role.order and role.order.index(span.name) < rank]
        position = earlier[-1].end if earlier else layout.open_end
        inserts.setdefault(position, []).append(
            separator + _rendered(name, values[name], separator, step))

    pieces = [document[layout.start:layout.open_end], *inserts.pop(layout.open_end, [])]
    cursor = layout.open_end
    for span in layout.children:
        pieces.append(document[cursor:span.start])
        pieces.append(_rendered(span.name, values[span.name], separator, step)
                      if span.name in owned else document[span.start:span.end])
        pieces += inserts.pop(span.end, [])
        cursor = span.end
    pieces.append(document[cursor:layout.end])
    return "".join(pieces), changes
