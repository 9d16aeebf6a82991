"""HTTP Basic credentials: building the header, and checking one in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac


def basic_auth(username: str, password: str) -> str:
    """The Authorization header value for these credentials."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def authorized(header: str | None, expected: tuple[str, str]) -> bool:
    """Whether `header` carries exactly the `expected` (username, password)."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":  # the scheme is case-insensitive (RFC 9110)
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    if not sep:
        return False
    # evaluate both comparisons, so that timing does not tell which half was wrong
    user_ok = hmac.compare_digest(user, expected[0].encode())
    password_ok = hmac.compare_digest(password, expected[1].encode())
    return user_ok & password_ok
