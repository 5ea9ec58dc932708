"""Middlewares that check akener keys with a ``Verifier`` and answer refusals as akener does.

Import the one for your framework (each needs that framework installed, e.g. the ``fastapi``,
``flask`` or ``django`` extra):

* ``akener_client.middleware.asgi``: ``require_key`` (a FastAPI dependency), ``AkenerMiddleware``
  (any ASGI app), ``install`` (the error answers for FastAPI/Starlette);
* ``akener_client.middleware.wsgi``: ``AkenerWSGIMiddleware`` (any WSGI app: Flask, Django, …);
* ``akener_client.middleware.flask``: ``require_key`` (a view decorator);
* ``akener_client.middleware.django``: ``AkenerMiddleware`` and ``require_scopes``.

Each answers ``401`` (no key, or a malformed, unknown, inactive or expired one), ``403`` (a
scope missing, an address not allowed), ``429`` (a rate limit or credits used up) and ``503``
(akener cannot be reached and memory cannot answer), with akener's JSON error body.
"""
