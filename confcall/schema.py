"""Bandwidth's request and callback shapes, checked against its OpenAPI schemas.

The checker (openapi-schema-validator, and pydantic and a dozen more packages with it) is
not part of the default install: `pip install 'confcall[sandbox]'` brings it, and the test
extra does. Without it `available()` is False and the sandbox checks nothing."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from importlib.util import find_spec
from typing import Any

INSTALL_HINT = "pip install 'confcall[sandbox]'"


@cache
def available() -> bool:
    """Whether requests can be checked: the validator is installed."""
    try:
        return find_spec("openapi_schema_validator") is not None
    except (ImportError, ValueError):  # a module hidden by a None in sys.modules
        return False

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
    """Where `body` breaks Bandwidth's schema `name` (e.g. "messageRequest"); [] if nowhere.
    Needs the validator (see `available`)."""
    found = []
    for error in _validator(name).iter_errors(body):
        where = "/".join(str(p) for p in error.absolute_path) or "body"
        found.append(f"{where}: {error.message[:200]}")
    return sorted(found)
