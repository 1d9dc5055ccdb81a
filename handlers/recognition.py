"""Recognition in the cycle: `join_round` puts a product on the agenda of
the next evaluation round of a level (the province's, the ministry's), and
`issue_certificate` issues the numbered certificate a recognition decision
grants (26/2026 Art. 4-5; OCOP.md "Recognition, rounds and certificates").
"""
from __future__ import annotations

import secrets
from datetime import date

from marshmallow import Schema, fields, validate
from sqlalchemy import bindparam, insert, select, update

from handlers.context import HandlerContext
from handlers.promotion import add_months
from handlers.registry import handler
from storage.criteria import certificate_validity_months
from storage.models import Jurisdiction, Producer
from storage.recognition_models import (
    CERT_REPLACED,
    CERT_VALID,
    CERTIFICATE_KINDS,
    ROUND_LEVELS,
    Certificate,
    DecisionItem,
    EvaluationRound,
    RoundEntry,
)
from storage.round_calendar import next_open_round, round_label

_entries, _rounds = RoundEntry.__table__, EvaluationRound.__table__
_certificates, _items = Certificate.__table__, DecisionItem.__table__
_producers, _areas = Producer.__table__, Jurisdiction.__table__


class JoinRoundParams(Schema):
    level = fields.String(required=True, validate=validate.OneOf(ROUND_LEVELS))


@handler("join_round", JoinRoundParams,
         "Đưa sản phẩm vào đợt đánh giá tiếp theo (cấp tỉnh, Trung ương) / "
         "put the product on the next evaluation round of the level",
         result={"round_id": "id", "round_label": "Đợt 2 năm 2027", "decide_by": "ISO date"})
def join_round(context: HandlerContext, level: str) -> dict:
    connection, instance = context.connection, context.instance
    province_id = instance.areas.get("province") if level == "province" else None
    current = connection.execute(
        select(_rounds.c.id, _rounds.c.year, _rounds.c.number, _rounds.c.extra, _rounds.c.decide_by)
        .join(_entries, _entries.c.round_id == _rounds.c.id)
        .where(_entries.c.instance_id == instance.id, _entries.c.left_at.is_(None), _rounds.c.level == level)
    ).first()
    if current is None:  # not a retry of this task: leave any other round, join the next one of this level
        connection.execute(update(_entries).where(_entries.c.instance_id == instance.id,
                                                  _entries.c.left_at.is_(None))
                           .values(left_at=context.now, outcome="moved"))
        current = next_open_round(connection, level, province_id, context.today)
        again = connection.execute(update(_entries).where(
            _entries.c.round_id == current.id, _entries.c.instance_id == instance.id)
            .values(left_at=None, outcome=None, joined_at=context.now)).rowcount
        if not again:  # a re-evaluation may come back to the round it left
            connection.execute(insert(_entries).values(
                round_id=current.id, instance_id=instance.id, product_id=instance.product_id,
                joined_at=context.now, left_at=None, outcome=None))
    return {"round_id": current.id, "round_label": round_label(current.number, current.year, current.extra),
            "decide_by": current.decide_by.isoformat()}


class DecisionRef(Schema):
    id = fields.Integer(required=True, validate=validate.Range(min=1))
    number = fields.String(required=True, validate=validate.Length(min=1, max=64))
    signed_on = fields.Date(required=True)
    signer = fields.String(required=True, validate=validate.Length(min=1, max=200))
    authority = fields.String(required=True)


class IssueCertificateParams(Schema):
    decision = fields.Nested(DecisionRef, required=True)
    stars = fields.Integer(required=True, validate=validate.Range(min=3, max=5))
    kind = fields.String(load_default="new", validate=validate.OneOf(CERTIFICATE_KINDS))
    previous_certificate_id = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))


@handler("issue_certificate", IssueCertificateParams,
         "Cấp giấy chứng nhận sản phẩm OCOP theo quyết định công nhận / "
         "issue the numbered OCOP certificate a recognition decision grants",
         result={"certificate_id": "id", "certificate_number": "text", "valid_until": "ISO date"})
def issue_certificate(context: HandlerContext, decision: dict, stars: int, kind: str,
                      previous_certificate_id: int | None) -> dict:
    connection, instance = context.connection, context.instance
    found = connection.execute(_CERTIFICATE_OF, {"instance_id": instance.id}).first()
    if found is not None:  # issued by an earlier run of this task (a retry)
        return {"certificate_id": found.id, "certificate_number": found.number,
                "valid_until": found.valid_until.isoformat()}
    product = instance.product
    producer = connection.execute(_PRODUCER, {"producer_id": product.producer_id}).one()
    issued_on: date = decision["signed_on"]
    valid_until = add_months(issued_on, certificate_validity_months())
    # One certificate per instance: its id makes the number unique without a counter to race on.
    number = f"OCOP-{producer.commune_code.split('-')[0]}-{issued_on.year}-{instance.id:06d}"
    certificate_id = connection.execute(insert(_certificates).values(
        number=number, verify_code=secrets.token_urlsafe(16)[:22], product_id=product.id,
        producer_id=product.producer_id, province_id=instance.areas["province"], commune_id=producer.commune_id,
        group_code=product.group_code, producer_kind=producer.kind, stars=stars, kind=kind,
        instance_id=instance.id, decision_id=decision["id"], issued_on=issued_on, valid_until=valid_until,
        status=CERT_VALID, previous_id=previous_certificate_id, created_at=context.now)).inserted_primary_key[0]
    connection.execute(update(_items).where(_items.c.decision_id == decision["id"],
                                            _items.c.instance_id == instance.id)
                       .values(certificate_id=certificate_id))
    if previous_certificate_id is not None:
        connection.execute(update(_certificates).where(_certificates.c.id == previous_certificate_id,
                                                       _certificates.c.status == CERT_VALID)
                           .values(status=CERT_REPLACED, status_changed_on=issued_on))
    return {"certificate_id": certificate_id, "certificate_number": number, "valid_until": valid_until.isoformat()}


_CERTIFICATE_OF = select(_certificates.c.id, _certificates.c.number, _certificates.c.valid_until).where(
    _certificates.c.instance_id == bindparam("instance_id"))
_PRODUCER = (select(_producers.c.commune_id, _producers.c.kind, _areas.c.code.label("commune_code"))
             .join(_areas, _areas.c.id == _producers.c.commune_id)
             .where(_producers.c.id == bindparam("producer_id")))
