"""The registry of service-task handlers.

A handler is a function `handler(context, **params) -> dict` with a declared
marshmallow schema for its parameters. The diagram names a handler in
`spiffworkflow:serviceTaskOperator id="NAME"`; deploy refuses unknown names
and parameters that do not fit the schema, and every call validates the
evaluated values again before the handler runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from marshmallow import Schema, ValidationError

from handlers.context import HandlerContext


@dataclass
class Handler:
    name: str
    function: Callable[..., dict]
    params: type[Schema]
    description: str
    result: dict = field(default_factory=dict)  # documentation: result keys -> meaning
    # A pure handler computes its result from its parameters alone and writes
    # nothing: a replay runs it again and compares. Other handlers' recorded
    # results are reused by a replay, which must not write.
    pure: bool = False
    # One schema instance serves every call: marshmallow keeps no per-call
    # state in it, and building one costs more than most handlers' work.
    schema: Schema = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.schema = self.params()

    def parameter_names(self) -> tuple[set[str], set[str]]:
        """(all declared names, required names)."""
        fields = self.schema.fields
        return set(fields), {name for name, f in fields.items() if f.required}

    def call(self, context: HandlerContext, params: dict[str, Any]) -> dict:
        try:
            values = self.schema.load(params)
        except ValidationError as err:
            raise HandlerParameterError(self.name, err.messages) from None
        try:
            result = self.function(context, **values)
        except BaseException:
            context.release(write=False)  # a second error from a flush would hide the first
            raise
        context.release()
        return result


class HandlerParameterError(ValueError):
    def __init__(self, name: str, messages: dict):
        self.messages = messages
        super().__init__(f"handler '{name}' refused its parameters: {messages}")


HANDLERS: dict[str, Handler] = {}


def handler(name: str, params: type[Schema], description: str, result: dict | None = None,
            pure: bool = False):
    """Decorator that registers a handler under the name diagrams use."""

    def register(function: Callable[..., dict]) -> Callable[..., dict]:
        if name in HANDLERS:
            raise ValueError(f"handler '{name}' registered twice")
        HANDLERS[name] = Handler(name, function, params, description, result or {}, pure)
        return function

    return register


def get(name: str) -> Handler | None:
    _load_builtin_handlers()
    return HANDLERS.get(name)


def all_handlers() -> dict[str, Handler]:
    _load_builtin_handlers()
    return dict(HANDLERS)


def _load_builtin_handlers() -> None:
    # Importing the modules runs their @handler decorators.
    from handlers import (  # noqa: F401
        certificates,
        council_ranking,
        deadlines,
        notify,
        promotion,
        ranking,
        recognition,
        registration,
        revocation,
        training,
    )
