"""The client covers every /api/v1 operation a running akener server describes."""

from __future__ import annotations

import inspect
import re
from typing import Any

import httpx

from akener_client import AkenerClient, AsyncAkenerClient
from akener_client._calls import AHEAD, OPERATIONS
from tests.conftest import Server

METHODS = {"get", "post", "put", "patch", "delete"}


def _document(server: Server) -> dict[str, Any]:
    answer = httpx.get(server.url + "/openapi.json", timeout=10).raise_for_status()
    document: dict[str, Any] = answer.json()
    return document


def _described(server: Server) -> dict[tuple[str, str], set[str]]:
    """Each /api/v1 operation and the names it takes: path, query and body fields."""
    document = _document(server)
    schemas = document["components"]["schemas"]
    found = {}
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue  # /hooks/… is GitHub's to call, not a client's
        for method in item.keys() & METHODS:
            operation = item[method]
            names = {
                p["name"] for p in operation.get("parameters", []) if p["in"] in ("path", "query")
            }
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                schema = body["schema"]
                if "$ref" in schema:
                    schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
                names |= set(schema.get("properties", {}))
            found[(method.upper(), re.sub(r"\{[^}]*\}", "{}", path))] = names
    return found


def _operations(server: Server) -> set[tuple[str, str]]:
    return set(_described(server))


def test_every_operation_of_the_running_server_has_a_client_method(server: Server) -> None:
    operations = _operations(server)
    assert len(operations) >= 20  # the document was read, not an empty one
    missing = sorted(operations - OPERATIONS.keys())
    assert not missing, f"operations without a client method: {missing}"


def test_every_parameter_and_body_field_can_be_passed(server: Server) -> None:
    # A field the server adds (a new filter, a new key setting) fails here until the client
    # takes it. The client may name the checked key ``key``, as the body does.
    for operation, names in _described(server).items():
        if operation not in OPERATIONS:
            continue  # reported by the test above
        method = getattr(AkenerClient, OPERATIONS[operation])
        taken = set(inspect.signature(method).parameters)
        assert names <= taken, f"{OPERATIONS[operation]} cannot send {sorted(names - taken)}"


def test_each_mapped_method_exists_on_both_clients_sync_and_async() -> None:
    for name in OPERATIONS.values():
        sync_method = getattr(AkenerClient, name)
        async_method = getattr(AsyncAkenerClient, name)
        assert not inspect.iscoroutinefunction(sync_method), name
        assert not inspect.isasyncgenfunction(sync_method), name
        assert inspect.iscoroutinefunction(async_method) or inspect.isasyncgenfunction(
            async_method
        ), name
        # The twins take the same arguments.
        assert inspect.signature(sync_method).parameters.keys() == (
            inspect.signature(async_method).parameters.keys()
        ), name


def test_the_mapping_names_no_operation_the_server_does_not_have(server: Server) -> None:
    # Some operations are mapped ahead of the servers that serve them; anything else mapped but
    # not served is a typo in OPERATIONS.
    extra = OPERATIONS.keys() - _operations(server) - AHEAD
    assert not extra, sorted(extra)
