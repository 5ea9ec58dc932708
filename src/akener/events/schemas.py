"""Shapes of webhook endpoints and deliveries in the API and the CLI's --json."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from akener.events.models import WebhookDelivery, WebhookEndpoint

URL_MAX = 2000


class WebhookCreate(BaseModel):
    """A new endpoint: where, which events, and a note for people."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=URL_MAX)
    events: list[str] = Field(min_length=1, max_length=32)
    description: str = Field(default="", max_length=500)


class WebhookUpdate(BaseModel):
    """Fields to change; those left out stay."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=URL_MAX)
    events: list[str] | None = Field(default=None, min_length=1, max_length=32)
    description: str | None = Field(default=None, max_length=500)


class WebhookRotate(BaseModel):
    """How long the previous secret keeps signing beside the new one."""

    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(default=86_400, ge=0, le=7 * 86_400)


class WebhookRead(BaseModel):
    """An endpoint; never its signing secret."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime
    created_by: str
    previous_secret_until: datetime | None

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookRead:
        """From the row."""
        return cls.model_validate(endpoint)


class WebhookCreated(WebhookRead):
    """The answer to a creation or a secret rotation: the signing secret, shown this once."""

    secret: str

    @classmethod
    def with_secret(cls, endpoint: WebhookEndpoint, secret: str) -> WebhookCreated:
        """The endpoint and its new secret."""
        return cls(**WebhookRead.of(endpoint).model_dump(), secret=secret)


class WebhookList(BaseModel):
    """Every endpoint."""

    items: list[WebhookRead]


class DeliveryRead(BaseModel):
    """One event's delivery to one endpoint and its last attempt."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    event_id: int
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> DeliveryRead:
        """From the row."""
        return cls.model_validate(delivery)


class DeliveryList(BaseModel):
    """An endpoint's most recent deliveries, newest first."""

    items: list[DeliveryRead]
