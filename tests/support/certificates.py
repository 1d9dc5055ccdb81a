"""Certificates made straight in the database for the tests after
recognition (revocation, inspection, validity, catalogue, report): a
product's completed cycle instance (a bare row unless the test gives one),
a recognition Decision with its item, and the Certificate.

`make_certificate(session, product_id, stars=3, issued_on=date,
status="valid", kind="new") -> Certificate` is the shared name and
signature (issue 16's helpers B1, B2, C and D each keep it)."""
from __future__ import annotations

import secrets
from datetime import date

from sqlalchemy import func, select

from engine.diagram import PRODUCT_PROCESS
from handlers.promotion import add_months
from storage.areas import area_chain
from storage.models import ProcessDefinition, ProcessInstance, Producer, Product
from storage.recognition_models import ITEM_RECOGNISED, Certificate, Decision, DecisionItem


def make_certificate(session, product_id: int, stars: int = 3, issued_on: date = date(2026, 1, 15),
                     status: str = "valid", kind: str = "new", instance_id: int | None = None) -> Certificate:
    """A certificate of the product, issued by its province's People's
    Committee (the ministry for 5 stars) on `issued_on`, valid 36 months.
    `instance_id`: the instance that issued it (default: a bare completed
    cycle row of the issuing year, no history)."""
    product = session.get(Product, product_id)
    producer = session.get(Producer, product.producer_id)
    areas = area_chain(session, producer.commune_id)
    if instance_id is None:
        definition_id = session.scalar(select(func.min(ProcessDefinition.id)))
        instance = ProcessInstance(definition_id=definition_id, process_id=PRODUCT_PROCESS, product_id=product.id,
                                   jurisdiction_id=producer.commune_id, areas=areas, year=issued_on.year,
                                   status="completed", end_event="end_recognised", stars=stars, state="{}",
                                   version=1)
        session.add(instance)
        session.flush()
        instance_id = instance.id
    authority, area = ("ministry", areas.get("central")) if stars == 5 else ("province", areas["province"])
    serial = secrets.token_hex(4)
    decision = Decision(kind="recognition", authority=authority, area_id=area, number=f"{serial}/QĐ-UBND",
                        signed_on=issued_on, signer="Chủ tịch Nguyễn Văn Ký")
    session.add(decision)
    session.flush()
    certificate = Certificate(
        number=f"OCOP-{serial}", verify_code=secrets.token_urlsafe(16)[:22], product_id=product.id,
        producer_id=producer.id, province_id=areas["province"], commune_id=producer.commune_id,
        group_code=product.group_code, producer_kind=producer.kind, stars=stars, kind=kind,
        instance_id=instance_id, decision_id=decision.id, issued_on=issued_on,
        valid_until=add_months(issued_on, 36), status=status)
    session.add(certificate)
    session.flush()
    session.add(DecisionItem(decision_id=decision.id, instance_id=instance_id, product_id=product.id, stars=stars,
                             outcome=ITEM_RECOGNISED, certificate_id=certificate.id))
    session.flush()
    return certificate
