"""Settings, from the environment (prefix ``ITINERA_``) or given in code."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_PREFIX = "ITINERA_SECRET_"


class Settings(BaseSettings):
    """Runtime settings. Every field can be set as ``ITINERA_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="ITINERA_", extra="ignore")

    database_url: str = Field("sqlite:///itinera.db", description="sqlite:///file.db, sqlite:// (in memory) or postgresql://...")
    tenant: str = Field("default", description="The tenant used when none is given")
    max_event_bytes: int = Field(256 * 1024, description="Largest accepted CloudEvent, serialized")
    max_input_bytes: int = Field(1024 * 1024, description="Largest accepted run input, serialized")
    batch_size: int = Field(500, description="Runs a worker advances per transaction")
    lease_seconds: float = Field(30.0, description="How long a worker holds a claimed run before another may take it")
    event_sink: str | None = Field(None, description="URL that emitted events are POSTed to, if any")
    worker_idle_sleep: float = Field(0.05, description="Seconds a worker sleeps when there is no work")

    def secrets(self) -> dict[str, Any]:
        """Secrets for ``$secrets``: each ``ITINERA_SECRET_<name>`` variable, JSON-decoded when it parses.

        The name is kept as written; an all-capitals name also answers to its lower-case form.

        They are passed to expressions only; they are never logged or stored in run state.
        """
        import orjson

        out: dict[str, Any] = {}
        for key, value in os.environ.items():
            if key.startswith(SECRET_PREFIX) and len(key) > len(SECRET_PREFIX):
                name = key[len(SECRET_PREFIX) :]
                try:
                    parsed = orjson.loads(value)
                except orjson.JSONDecodeError:
                    parsed = value
                out[name] = parsed
                if name.isupper():  # ITINERA_SECRET_CRM_KEY also answers to crm_key
                    out.setdefault(name.lower(), parsed)
        return out
