"""The caller's own API tokens through the JSON API: listing them, creating
one (from a signed-in browser session only) and revoking one. The
administration pages manage any account's tokens (web/admin.py)."""
from __future__ import annotations

from flask import g

from programme import tokens
from programme.accounts import AccountRefused
from web.api import api
from web.api.authentication import caller
from web.api.bodies import dump, json_body
from web.api.errors import ApiError
from web.api.openapi import documented
from web.api.schemas import TokenCreatedSchema, TokenCreateSchema, TokenListSchema, TokenSchema
from web.context import bpmn_engine, db, reading


@api.get("/tokens")
@documented("The caller's API tokens (never their secrets)", "tokens", TokenListSchema)
def list_tokens():
    with reading() as session:
        listed = tokens.tokens_of(session, caller().user_id)
    return dump(TokenListSchema, {"tokens": listed})


@api.post("/tokens")
@documented("Create an API token for the signed-in user; the secret is shown only here", "tokens",
            TokenCreatedSchema, status=201, body=TokenCreateSchema, errors=(401, 403, 422))
def create_token():
    """Only from a browser session (with X-CSRFToken): a token cannot mint
    further tokens, so a leaked one can be revoked once and for all."""
    if g.api_via != "session":
        raise ApiError("forbidden", "create tokens from a signed-in session, not with a token")
    name = TokenCreateSchema().load(json_body())["name"]
    try:
        issued = tokens.create_token(db(), caller().user_id, name, bpmn_engine().clock())
    except AccountRefused:  # deactivated since this request's session was checked
        raise ApiError("unauthenticated", "sign in or send an API token") from None
    body = {field: getattr(issued.token, field) for field in TokenSchema().fields} | {"token": issued.secret}
    return dump(TokenCreatedSchema, body, status=201)


@api.route("/tokens/<int:token_id>", methods=["DELETE"])
@documented("Revoke one of the caller's tokens (it stays listed, marked revoked)", "tokens",
            TokenSchema, errors=(401, 403, 404))
def revoke_token(token_id: int):
    revoked = tokens.revoke_token(db(), caller().user_id, token_id, bpmn_engine().clock())
    if revoked is None:
        raise ApiError("not_found", f"no token {token_id}")
    return dump(TokenSchema, revoked)
