"""Connectors and the outbox dispatcher: how recorded side effects reach the outside world."""

from __future__ import annotations

from itinera.connectors.base import DEFAULT_RETRY, Connector, Outcome, OutcomeKind, RetryPolicy
from itinera.connectors.emit import EmitConnector
from itinera.connectors.http import HttpConnector
from itinera.connectors.outbox import Dispatcher, default_dispatcher, outbox_sub_id

__all__ = [
    "DEFAULT_RETRY",
    "Connector",
    "Dispatcher",
    "EmitConnector",
    "HttpConnector",
    "Outcome",
    "OutcomeKind",
    "RetryPolicy",
    "default_dispatcher",
    "outbox_sub_id",
]
