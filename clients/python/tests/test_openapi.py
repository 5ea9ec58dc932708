"""The client covers every /api/v1 operation a running akener server describes."""

from __future__ import annotations

import inspect
import re

import httpx

from akener_client import AkenerClient, AsyncAkenerClient
from akener_client._calls import OPERATIONS
from tests.conftest import Server

METHODS = {"get", "post", "put", "patch", "delete"}


def _operations(server: Server) -> set[tuple[str, str]]:
    document = httpx.get(server.url + "/openapi.json", timeout=10).raise_for_status().json()
    found = set()
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue  # /hooks/… is GitHub's to call, not a client's
        for method in item.keys() & METHODS:
            found.add((method.upper(), re.sub(r"\{[^}]*\}", "{}", path)))
    return found


def test_every_operation_of_the_running_server_has_a_client_method(server: Server) -> None:
    operations = _operations(server)
    assert len(operations) >= 20  # the document was read, not an empty one
    missing = sorted(operations - OPERATIONS.keys())
    assert not missing, f"operations without a client method: {missing}"


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
    # The change stream is mapped ahead of the server that serves it; anything else mapped but
    # not served is a typo in OPERATIONS.
    extra = OPERATIONS.keys() - _operations(server) - {("GET", "/api/v1/keys/changes")}
    assert not extra, sorted(extra)
