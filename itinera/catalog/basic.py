"""Plain blocks every journey can use: ``log`` and ``template``."""

from __future__ import annotations

import functools
import logging
from typing import Any, Literal

from jinja2 import Template
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field

from itinera.catalog.block import Block, BlockContext
from itinera.catalog.registry import register

logger = logging.getLogger("itinera.journey")


class LogInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(max_length=10_000)
    level: Literal["debug", "info", "warning", "error"] = "info"
    fields: dict[str, Any] = Field(default_factory=dict)


class LogOutput(BaseModel):
    logged: bool
    message: str


def _log(args: LogInput, ctx: BlockContext) -> LogOutput:
    logger.log(
        logging.getLevelName(args.level.upper()),
        args.message,
        extra={"run_id": ctx.run_id, "subject": ctx.subject, "task": ctx.task, "fields": args.fields},
    )
    return LogOutput(logged=True, message=args.message)


class TemplateInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str = Field(max_length=100_000, description="A Jinja2 template, rendered in a sandbox")
    data: dict[str, Any] = Field(default_factory=dict, description="The variables the template sees")


class TemplateOutput(BaseModel):
    text: str


_env = ImmutableSandboxedEnvironment(autoescape=False)
_MAX_OUTPUT = 1_000_000


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    # A journey renders the same few templates for every run: compile each once per process.
    return _env.from_string(source)


def _render(args: TemplateInput, ctx: BlockContext) -> TemplateOutput:
    try:
        text = _compiled(args.template).render(**args.data)
    except TemplateError as err:
        raise ValueError(f"template failed: {err}") from None
    if len(text) > _MAX_OUTPUT:
        raise ValueError(f"template output is {len(text)} characters, over the {_MAX_OUTPUT} limit")
    return TemplateOutput(text=text)


register(Block(name="log", version="1.0.0", summary="Write a structured log line for the run.", input_model=LogInput, output_model=LogOutput, run=_log))
register(
    Block(
        name="template",
        version="1.0.0",
        summary="Render a Jinja2 template in a sandbox (no attribute access to Python internals, no I/O).",
        input_model=TemplateInput,
        output_model=TemplateOutput,
        run=_render,
    )
)
