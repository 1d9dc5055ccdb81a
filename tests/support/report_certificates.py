"""Certificates made directly in the database for the report's tests, with
rounds, revocation rounds and chosen statuses: each with its own recognition decision, the
decision's item, and a finished instance standing for the cycle (or the
re-evaluation, the upgrade) that led to it. The world's diagrams must be
deployed (the instance row names one)."""
from __future__ import annotations

import itertools
from datetime import date, timedelta

from sqlalchemy import select

from handlers.promotion import add_months
from storage.models import Jurisdiction, ProcessDefinition, ProcessInstance, Producer, Product
from storage.recognition_models import (
    CERT_VALID,
    ITEM_RECOGNISED,
    ITEM_REVOKED,
    Certificate,
    Decision,
    DecisionItem,
    EvaluationRound,
)

_serial = itertools.count(1)


def area_chain(session, commune_id: int) -> dict[str, int]:
    """{level: id} from the commune up to the central level."""
    chain, area = {}, session.get(Jurisdiction, commune_id)
    while area is not None:
        chain[area.level] = area.id
        area = session.get(Jurisdiction, area.parent_id) if area.parent_id else None
    return chain


def make_round(session, province_id: int | None, year: int, number: int) -> EvaluationRound:
    """A round of the province's council (province_id None: the ministry's)."""
    found = session.scalar(select(EvaluationRound).where(
        EvaluationRound.level == ("province" if province_id else "central"),
        EvaluationRound.province_id.is_(None) if province_id is None else EvaluationRound.province_id == province_id,
        EvaluationRound.year == year, EvaluationRound.number == number))
    if found:
        return found
    closes = date(year, 4, 30) if number == 1 else date(year, 10, 30)
    found = EvaluationRound(level="province" if province_id else "central", province_id=province_id, year=year,
                            number=number, proposals_by=closes, decide_by=closes + timedelta(days=60))
    session.add(found)
    session.flush()
    return found


def _decision(session, kind: str, area_id: int, round_id: int | None, signed_on: date) -> Decision:
    serial = next(_serial)
    decision = Decision(kind=kind, authority="province", area_id=area_id, round_id=round_id,
                        number=f"{serial}/QĐ-UBND-{kind[:3]}", signed_on=signed_on, signer="Chủ tịch UBND tỉnh")
    session.add(decision)
    session.flush()
    return decision


def make_certificate(session, product_id: int, stars: int = 3, issued_on: date = date(2026, 1, 15),
                     status: str = CERT_VALID, kind: str = "new", *, round_id: int | None = None,
                     valid_until: date | None = None, status_changed_on: date | None = None,
                     revocation_round_id: int | None = None, previous_id: int | None = None,
                     producer_kind: str | None = None, group_code: str | None = None) -> Certificate:
    """A certificate of the product; revoked ones get a revocation decision
    too (in `revocation_round_id` when given). `status_changed_on` defaults
    to valid_until for an expired certificate and to issued_on + 1 year for
    a revoked or replaced one."""
    product = session.get(Product, product_id)
    producer = session.get(Producer, product.producer_id)
    chain = area_chain(session, producer.commune_id)
    valid_until = valid_until or add_months(issued_on, 36)
    if status != CERT_VALID and status_changed_on is None:
        status_changed_on = valid_until + timedelta(days=1) if status == "expired" else \
            issued_on + timedelta(days=365)
    definition = session.scalar(select(ProcessDefinition.id).order_by(ProcessDefinition.id).limit(1))
    instance = ProcessInstance(definition_id=definition, process_id="ocop_certificate_fixture",
                               product_id=product_id, jurisdiction_id=producer.commune_id, areas=chain,
                               year=issued_on.year, status="completed", stars=stars, state="{}", version=1)
    session.add(instance)
    session.flush()
    decision = _decision(session, "recognition", chain["province"], round_id, issued_on)
    serial = next(_serial)
    certificate = Certificate(
        number=f"{serial:05d}/GCN-OCOP", verify_code=f"fixture{serial:015d}", product_id=product_id,
        producer_id=producer.id, province_id=chain["province"], commune_id=producer.commune_id,
        group_code=group_code or product.group_code, producer_kind=producer_kind or producer.kind, stars=stars,
        kind=kind, instance_id=instance.id, decision_id=decision.id, issued_on=issued_on, valid_until=valid_until,
        status=status, status_changed_on=status_changed_on, previous_id=previous_id)
    session.add(certificate)
    session.flush()
    session.add(DecisionItem(decision_id=decision.id, instance_id=instance.id, product_id=product_id, stars=stars,
                             outcome=ITEM_RECOGNISED, certificate_id=certificate.id))
    if status == "revoked":
        revocation = _decision(session, "revocation", chain["province"], revocation_round_id, status_changed_on)
        session.add(DecisionItem(decision_id=revocation.id, product_id=product_id, stars=stars,
                                 outcome=ITEM_REVOKED, certificate_id=certificate.id))
        certificate.revocation_decision_id = revocation.id
        certificate.revocation_ground = "mark_misused"
    session.flush()
    return certificate
