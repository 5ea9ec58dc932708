"""akener-client: the akener REST API from Python, sync and async, and an in-process verifier.

Depends on httpx only and imports nothing of the akener server.
"""

from akener_client.async_client import AsyncAkenerClient
from akener_client.client import AkenerClient
from akener_client.errors import (
    AkenerAPIError,
    AkenerError,
    AkenerTransportError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "AkenerAPIError",
    "AkenerClient",
    "AkenerError",
    "AkenerTransportError",
    "AsyncAkenerClient",
    "AuthenticationError",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServiceUnavailableError",
    "ValidationError",
    "__version__",
]

# --- Verifier and middlewares (owned by the `stream` work: verifier.py, middleware modules) ---
# Add their exports below this line, and their names to __all__ with `__all__ += [...]`.
# Keep the framework middlewares out of this module's imports (they need optional extras).
from akener_client.verifier import Verification, Verifier

__all__ += ["Verification", "Verifier"]
# --- end of the Verifier block ---
