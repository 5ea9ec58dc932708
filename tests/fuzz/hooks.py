"""schemathesis hooks: the fuzzer may do anything to akener except saw off the branch it sits on.

Loaded by the schemathesis process (``SCHEMATHESIS_HOOKS=tests.fuzz.hooks``). The id of the key
the fuzzer authenticates with comes in ``AKENER_FUZZ_KEY_ID``. Any request that could change that
key — rotate, delete, deactivate, expire, rename, change its scopes or limits, whatever the body
and whatever route a later version adds under ``/keys/{key_id}`` — is sent to an id that does not
exist instead. Nothing in akener's API fetches an address today; operations that would (webhooks,
callbacks) and streaming ones are excluded by path in ``test_schemathesis.py``.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ELSEWHERE = "f" * 32  # a well-formed id no key has


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Point every unsafe request on the fuzzer's own key at a key that does not exist.

    ``before_call`` runs right before every request of every phase (examples, coverage,
    fuzzing, stateful links that learned the id from /whoami, checks that replay a request).
    """
    protected = os.environ["AKENER_FUZZ_KEY_ID"]
    if case.method.upper() in SAFE_METHODS or not case.path_parameters:
        return
    for name, value in case.path_parameters.items():
        if str(value) == protected:
            case.path_parameters[name] = ELSEWHERE
