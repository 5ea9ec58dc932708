"""Every table's model, imported in one place so Alembic and the tests see the whole schema."""

from akener.accounts.models import LoginFailure, Role, User, WebSession, user_roles
from akener.audit.models import AuditEvent
from akener.db.base import Base
from akener.events.models import OutboxEvent, SenderLease, WebhookDelivery, WebhookEndpoint
from akener.installation.models import SecretFingerprint
from akener.keys.models import ApiKey, KeyChangeSeq, Owner
from akener.verify.models import KeyUsage

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "AuditEvent",
    "KeyChangeSeq",
    "KeyUsage",
    "LoginFailure",
    "OutboxEvent",
    "Owner",
    "Role",
    "SecretFingerprint",
    "SenderLease",
    "User",
    "WebSession",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
    "user_roles",
]
