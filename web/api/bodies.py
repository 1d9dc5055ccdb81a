"""Request and response bodies of the JSON API: reading a request's JSON
object, and writing a response through its marshmallow schema."""
from __future__ import annotations

import functools

from flask import jsonify, request
from marshmallow import Schema

from web.api.errors import ApiError


def json_body(optional: bool = False) -> dict:
    """The request's JSON object; with `optional`, {} for an empty body."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # JSON nested past the parser's recursion limit: no form either
        data = None
    if data is None and optional and not request.get_data():
        return {}
    if not isinstance(data, dict):
        raise ApiError("invalid", "expected a JSON object body (Content-Type: application/json)",
                       {"_schema": ["JSON object expected"]})
    return data


@functools.lru_cache(maxsize=None)
def _schema(schema_class: type[Schema]) -> Schema:
    """One instance per response schema: marshmallow copies every declared
    field when a schema is made, which costs more than dumping an engine call's
    result; dumping keeps no state in the instance."""
    return schema_class()


def dump(schema_class: type[Schema], value, status: int = 200):
    """The response: `value` dumped by the schema, as JSON."""
    response = jsonify(_schema(schema_class).dump(value))
    response.status_code = status
    return response
