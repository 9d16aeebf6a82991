"""Bandwidth's request and callback shapes, checked against its OpenAPI schemas."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "bandwidth_schema.json"


@cache
def _components() -> dict[str, Any]:
    text = resources.files("confcall").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    components: dict[str, Any] = json.loads(text)["components"]
    return components


@cache
def _validator(name: str) -> Any:
    from openapi_schema_validator import OAS30Validator

    components = _components()
    if name not in components["schemas"]:
        raise KeyError(f"no schema {name!r} in {SCHEMA_FILE}")
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": components})


def problems(name: str, body: Any) -> list[str]:
    """Where `body` breaks Bandwidth's schema `name` (e.g. "messageRequest"); [] if nowhere."""
    found = []
    for error in _validator(name).iter_errors(body):
        where = "/".join(str(p) for p in error.absolute_path) or "body"
        found.append(f"{where}: {error.message[:200]}")
    return sorted(found)
