"""The actions akener records, with the words people read for them.

Services record these strings; the dashboard offers them as a filter and shows the labels. An
action missing here still appears in the log and can still be filtered by (it is then shown as
written): this list is for reading, not a gate.
"""

from __future__ import annotations

ACTION_LABELS: dict[str, str] = {
    "key.created": "Key created",
    "key.renamed": "Key renamed",
    "key.activated": "Key activated",
    "key.deactivated": "Key deactivated",
    "key.expiry_changed": "Key expiry changed",
    "key.rotated": "Key rotated",
    "key.deleted": "Key deleted",
    "key.scopes_changed": "Key scopes changed",
    "key.limits_changed": "Key limits changed",
    "owner.limits_changed": "Owner limits changed",
    "key.leaked": "Key reported as leaked",
    "key.refused": "Refused key still presented",
    "webhook.created": "Webhook added",
    "webhook.changed": "Webhook changed",
    "webhook.deleted": "Webhook deleted",
    "webhook.secret_rotated": "Webhook signing secret rotated",
    "setup.completed": "First-run setup completed",
    "user.created": "User created",
    "user.role_assigned": "Role given to user",
    "user.role_removed": "Role taken from user",
    "user.activated": "User reactivated",
    "user.deactivated": "User deactivated",
    "user.deleted": "User deleted",
    "role.created": "Role created",
    "role.changed": "Role changed",
    "role.deleted": "Role deleted",
    "login.succeeded": "Signed in",
    "login.failed": "Sign-in failed",
}
KNOWN_ACTIONS: tuple[str, ...] = tuple(ACTION_LABELS)


def action_label(action: str) -> str:
    """The readable name of ``action`` (the raw string for one this list does not know)."""
    return ACTION_LABELS.get(action, action)
