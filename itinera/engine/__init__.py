"""The durable runtime: compile definitions, advance runs, route events."""

from itinera.engine.engine import Deployed, Engine, RunView, SendResult
from itinera.engine.worker import Worker

__all__ = ["Deployed", "Engine", "RunView", "SendResult", "Worker"]
