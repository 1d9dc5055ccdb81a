"""Deployed diagram versions through the JSON API (read only: deploying
and activating are the diagram pages' and the CLI's)."""
from __future__ import annotations

from programme import records
from web.api import api
from web.api.bodies import dump
from web.api.openapi import documented
from web.api.schemas import DefinitionListSchema
from web.context import reading


@api.get("/definitions")
@documented("Deployed diagram versions", "definitions", DefinitionListSchema)
def list_definitions():
    with reading() as session:
        definitions = [{"id": d.id, "name": d.name, "version": d.version, "sha256": d.sha256,
                        "author": d.author, "message": d.message, "deployed_at": d.deployed_at,
                        "province_id": d.province_id, "province_name": province, "is_active": d.is_active}
                       for d, province in records.diagram_versions(session)]
    return dump(DefinitionListSchema, {"definitions": definitions})
