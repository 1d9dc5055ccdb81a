"""STAND-INS (helper B1, issue 16) for what helper A adds to the cycle and
the lifecycle pools call: the handlers `join_round` and `issue_certificate`
and the form `recognition_decision`. Loaded as a pytest plugin only while
A's real ones are absent (`pytest -p tests.support.stand_ins_b1 ...`);
registering nothing when they exist. The lead drops this file at merge.
Never imported by the application."""
from __future__ import annotations

import secrets
from datetime import date

from marshmallow import Schema, fields, validate
from sqlalchemy import select, update

from engine import forms
from handlers import registry
from handlers.context import HandlerContext
from handlers.promotion import add_months
from storage.criteria import certificate_validity_months
from storage.models import Producer, Product
from storage.recognition_models import CERT_REPLACED, CERTIFICATE_KINDS, Certificate, DecisionItem

registry.all_handlers()  # the built-in ones first, so a real one wins


class _JoinRoundParams(Schema):
    level = fields.String(required=True, validate=validate.OneOf(("province", "central")))


def _join_round(context: HandlerContext, level: str) -> dict:
    return {"round_id": None, "round_label": "Đợt (thay thế)", "decide_by": context.today.isoformat()}


class _IssueParams(Schema):
    decision = fields.Dict(required=True)
    stars = fields.Integer(required=True, validate=validate.Range(min=3, max=5))
    kind = fields.String(required=True, validate=validate.OneOf(CERTIFICATE_KINDS))
    previous_certificate_id = fields.Integer(load_default=None, allow_none=True)


def _issue_certificate(context: HandlerContext, decision: dict, stars: int, kind: str,
                       previous_certificate_id: int | None) -> dict:
    session, instance = context.session, context.instance
    found = session.scalar(select(Certificate).where(Certificate.instance_id == instance.id))
    if found is None:
        product = session.get(Product, instance.product_id)
        producer = session.get(Producer, product.producer_id)
        issued_on = date.fromisoformat(decision["signed_on"])
        found = Certificate(
            number=f"{decision['number']}/{instance.id}", verify_code=secrets.token_urlsafe(16)[:22],
            product_id=product.id, producer_id=producer.id, province_id=instance.areas["province"],
            commune_id=producer.commune_id, group_code=product.group_code, producer_kind=producer.kind,
            stars=stars, kind=kind, instance_id=instance.id, decision_id=decision["id"], issued_on=issued_on,
            valid_until=add_months(issued_on, certificate_validity_months()), previous_id=previous_certificate_id)
        session.add(found)
        session.flush()
        session.execute(update(DecisionItem).where(DecisionItem.decision_id == decision["id"],
                                                   DecisionItem.product_id == product.id)
                        .values(certificate_id=found.id))
        if previous_certificate_id:
            session.execute(update(Certificate).where(Certificate.id == previous_certificate_id)
                            .values(status=CERT_REPLACED, status_changed_on=issued_on))
    return {"certificate_id": found.id, "certificate_number": found.number,
            "valid_until": found.valid_until.isoformat()}


class _DecisionRef(forms.FormSchema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    signed_on = fields.String(required=True)
    signer = fields.String(required=True)
    authority = fields.String(required=True)


class _RecognitionDecisionForm(forms.FormSchema):
    decision = fields.Nested(_DecisionRef, required=True)
    outcome = fields.String(required=True)
    stars = fields.Integer(required=True)


if "join_round" not in registry.HANDLERS:
    registry.handler("join_round", _JoinRoundParams, "STAND-IN (B1 tests)")(_join_round)
if "issue_certificate" not in registry.HANDLERS:
    registry.handler("issue_certificate", _IssueParams, "STAND-IN (B1 tests)")(_issue_certificate)
forms.FORMS.setdefault("recognition_decision", _RecognitionDecisionForm)
