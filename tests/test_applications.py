"""Reading Bandwidth's applications and rewriting only the settings confcall owns."""

from __future__ import annotations

import pytest
from defusedxml.ElementTree import fromstring
from fake_bandwidth import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from confcall.applications import (
    MESSAGING,
    VOICE,
    Credentials,
    Role,
    parse_application,
    parse_application_list,
    rewrite,
    wanted,
)
from confcall.config import Config, load_config
from confcall.errors import ConfcallError

PUBLIC = "https://line.example.net"
PAIR = Credentials("confcall-1f2e", "pw<&>\"'x")


def config(public_url: str = PUBLIC) -> Config:
    return load_config(None, {}, {"server.public_url": public_url})


def fixture_text(name: str) -> str:
    return (FIXTURES / f"applications-response.{name}.xml").read_text()


def application_of(document: str) -> str:
    """The <Application> element of an account API answer, exactly as written."""
    start = document.index("<Application>")
    end = document.index("</Application>") + len("</Application>")
    return document[start:end]


def creds_block(name: str, indent: str = "        ", step: str = "    ") -> str:
    inner = f"\n{indent}{step}"
    return (f"<{name}>{inner}<UserId>confcall-1f2e</UserId>"
            f"{inner}<Password>pw&lt;&amp;&gt;\"'x</Password>\n{indent}</{name}>")


def test_the_list_reads_every_application() -> None:
    listed = parse_application_list(fixture_text("list"))
    assert [(a.id, a.service_type, a.name) for a in listed] == [
        ("2cfcb382-161c-46d4-8c67-87ca09a72c85", "Messaging-V2", "app1"),
        ("0cb0112b-5998-4c81-999a-0d3fb5e3f8e2", "Voice-V2", "app2")]
    assert listed[1].get("CallbackCreds") == "15jPWZmXdm"


def test_an_empty_list_is_no_applications() -> None:
    assert parse_application_list("<ApplicationProvisioningResponse/>") == []


def test_only_confcalls_elements_change_and_every_other_byte_stays() -> None:
    document = fixture_text("messaging").replace("https://confcall.example.com",
                                                 "https://old.example.com")
    body, changes = rewrite(document, MESSAGING, wanted(MESSAGING, config(), PAIR))
    expected = (application_of(document)
                .replace("https://old.example.com/callbacks/messaging",
                         f"{PUBLIC}/callbacks/messaging")
                .replace("<InboundCallbackCreds>\n            <UserId>confcall</UserId>\n"
                         "        </InboundCallbackCreds>", creds_block("InboundCallbackCreds"))
                .replace("<OutboundCallbackCreds>\n            <UserId>confcall</UserId>\n"
                         "        </OutboundCallbackCreds>", creds_block("OutboundCallbackCreds")))
    assert body == expected
    assert {c.setting: (c.before, c.after) for c in changes} == {
        "InboundCallbackUrl": ("https://old.example.com/callbacks/messaging",
                               f"{PUBLIC}/callbacks/messaging"),
        "OutboundCallbackUrl": ("https://old.example.com/callbacks/messaging",
                                f"{PUBLIC}/callbacks/messaging"),
        "InboundCallbackCreds": ("user confcall", "user confcall-1f2e + password"),
        "OutboundCallbackCreds": ("user confcall", "user confcall-1f2e + password")}
    assert all("pw<" not in c.before + c.after for c in changes)


def test_deprecated_names_are_kept_in_step_and_comments_kept() -> None:
    document = fixture_text("messaging-deprecated")
    body, _ = rewrite(document, MESSAGING, wanted(MESSAGING, config(), PAIR))
    stored = parse_application(body)
    assert stored.get("MsgCallbackUrl") == stored.get("InboundCallbackUrl") == (
        f"{PUBLIC}/callbacks/messaging")
    assert stored.get("MsgCallbackCreds") == "confcall-1f2e"
    assert body.count("<!--DEPRECATED-->") == 2  # the two outside the replaced MsgCallbackCreds
    assert body.count("<Password>pw&lt;&amp;&gt;\"'x</Password>") == 3
    requested = document[document.index("<RequestedCallbackTypes>"):
                         document.index("</RequestedCallbackTypes>")]
    assert requested in body


def test_missing_elements_are_added_in_bandwidths_order() -> None:
    document = (fixture_text("voice")
                .replace("        <CallInitiatedMethod>POST</CallInitiatedMethod>\n", "")
                .replace("        <CallbackCreds>\n            <UserId>confcall</UserId>\n"
                         "        </CallbackCreds>\n", ""))
    body, changes = rewrite(document, VOICE, wanted(VOICE, config(), PAIR))
    assert [child.tag for child in fromstring(body)] == [
        "ApplicationId", "ServiceType", "AppName", "CallInitiatedCallbackUrl",
        "CallInitiatedMethod", "CallStatusCallbackUrl", "CallStatusMethod", "CallbackCreds",
        "CallbackTimeout"]
    assert "        <CallInitiatedMethod>POST</CallInitiatedMethod>\n" in body
    assert creds_block("CallbackCreds") in body
    assert {c.setting: c.before for c in changes}["CallInitiatedMethod"] == "not set"


def test_a_compact_document_stays_compact() -> None:
    document = ("<ApplicationProvisioningResponse><Application><ApplicationId>a1</ApplicationId>"
                "<ServiceType>Voice-V2</ServiceType><AppName>a &amp; b</AppName><!--note-->"
                "<CallbackTimeout>15</CallbackTimeout></Application>"
                "</ApplicationProvisioningResponse>")
    body, _ = rewrite(document, VOICE, wanted(VOICE, config(), PAIR))
    assert "\n" not in body
    assert body.startswith("<Application><ApplicationId>a1</ApplicationId><ServiceType>Voice-V2"
                           "</ServiceType><AppName>a &amp; b</AppName><CallInitiatedCallbackUrl>")
    assert body.endswith("</CallbackCreds><!--note--><CallbackTimeout>15</CallbackTimeout>"
                         "</Application>")


def test_credentials_confcall_does_not_own_stop_the_rewrite() -> None:
    document = fixture_text("voice").replace(
        "<CallbackTimeout>", "<CallInitiatedFallbackCreds><UserId>login2</UserId>"
        "</CallInitiatedFallbackCreds><CallbackTimeout>")
    with pytest.raises(ConfcallError, match="CallInitiatedFallbackCreds, whose password"):
        rewrite(document, VOICE, wanted(VOICE, config(), PAIR))


def test_a_url_with_markup_characters_is_escaped() -> None:
    public = "https://line.example.net/a?b=1&c=<2>"
    body, _ = rewrite(fixture_text("voice"), VOICE, wanted(VOICE, config(public), PAIR))
    assert parse_application(body).get("CallStatusCallbackUrl") == (
        config(public).callback_url("/callbacks/voice/status"))


# --- any unrelated content survives, byte for byte ---------------------------------------

UNRELATED_NAMES = st.sampled_from(["AppName", "RequestedCallbackTypes", "CallbackTimeout",
                                   "CallInitiatedFallbackUrl", "X-Future", "a.b_c"])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def unrelated_element(draw: st.DrawFn) -> str:
    name = draw(UNRELATED_NAMES)
    attribute = draw(st.sampled_from(["", ' kind="a>b"', " kind='x'"]))
    shape = draw(st.sampled_from(["text", "empty", "nested", "cdata"]))
    if shape == "empty":
        return f"<{name}{attribute}/>"
    if shape == "nested":
        inner = "".join(f"<Item>{_escaped(t)}</Item>" for t in draw(st.lists(TEXT, max_size=3)))
        return f"<{name}{attribute}>{inner}</{name}>"
    if shape == "cdata":
        return f"<{name}{attribute}><![CDATA[</{name}> <odd>]]></{name}>"
    return f"<{name}{attribute}>{_escaped(draw(TEXT))}</{name}>"


@st.composite
def application_document(draw: st.DrawFn, role: Role) -> tuple[str, list[str]]:
    """An account API answer mixing a few of the role's elements with unrelated ones, and
    the unrelated pieces in order."""
    old = {name: (f"<{name}><UserId>old</UserId></{name}>" if name.endswith("Creds")
                  else f"<{name}>https://old.example.com/x</{name}>")
           for name in role.owned()}
    owned = draw(st.lists(st.sampled_from(list(old)), unique=True))
    unrelated = draw(st.lists(st.one_of(unrelated_element(), st.just("<!-- a <note> -->")),
                              max_size=6))
    pieces = [old[name] for name in owned] + unrelated
    order = draw(st.permutations(range(len(pieces))))
    separator = draw(st.sampled_from(["", "\n    ", "\n\t\t", " "]))
    children = "".join(separator + pieces[i] for i in order)
    head = f"<ApplicationId>id-1</ApplicationId><ServiceType>{role.service_type}</ServiceType>"
    document = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ApplicationProvisioningResponse>'
                f"<Application>{head}{children}{separator}</Application>"
                "</ApplicationProvisioningResponse>")
    return document, [pieces[i] for i in order if i >= len(owned)]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([MESSAGING, VOICE]).flatmap(
    lambda role: st.tuples(st.just(role), application_document(role))))
def test_any_unrelated_content_survives_byte_for_byte(drawn: tuple[Role, tuple[str, list[str]]],
                                                      ) -> None:
    role, (document, unrelated) = drawn
    values = wanted(role, config(), PAIR)
    body, _ = rewrite(document, role, values)
    position = 0
    for piece in unrelated:  # each unrelated piece, unchanged and in the same order
        found = body.find(piece, position)
        assert found >= 0, (piece, body)
        position = found + len(piece)
    stored = parse_application(body)
    for name, value in values.items():
        expected = value.user if isinstance(value, Credentials) else value
        assert stored.get(name) == expected
    theirs = [c.tag for c in fromstring(document).find("Application") if c.tag not in values]
    assert [c.tag for c in fromstring(body) if c.tag not in values] == theirs
