"""Certificates made straight in the database, for tests that need one
without walking a product through its cycle and a decision:
`make_certificate(session, product_id, stars=3, issued_on=date, status="valid", kind="new")`
writes the instance that issued it, a numbered Decision with its
DecisionItem, and the Certificate (valid 36 months); `list_certificate`
puts it in the promotion catalogue as the cycle's publish step would.

A revoked certificate gets its revocation decision too; a replaced one is
only marked (make the newer one with `previous=` to link them)."""
from __future__ import annotations

import secrets
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.process_ids import CERTIFICATE_PROCESS, PRODUCT_PROCESS, UPGRADE_PROCESS
from handlers.promotion import add_months
from storage.areas import area_chain
from storage.criteria import certificate_validity_months
from storage.models import Jurisdiction, ProcessDefinition, ProcessInstance, Producer, Product, PromotionListing
from storage.recognition_models import (
    CERT_REPLACED,
    CERT_REVOKED,
    CERTIFICATE_STATUSES,
    ITEM_RECOGNISED,
    ITEM_REVOKED,
    Certificate,
    Decision,
    DecisionItem,
)

SIGNER = "Nguyễn Văn Ký, Phó Chủ tịch"
# The process a certificate of each kind is issued by.
_ISSUING_PROCESS = {"new": PRODUCT_PROCESS, "re_recognised": CERTIFICATE_PROCESS, "upgraded": UPGRADE_PROCESS}


def make_certificate(session: Session, product_id: int, stars: int = 3, issued_on: date = date(2026, 3, 2),
                     status: str = "valid", kind: str = "new", previous: Certificate | None = None,
                     authority: str | None = None, instance_id: int | None = None) -> Certificate:
    """A certificate of the product issued on `issued_on` by a decision of
    that date (the ministry's for 5 stars, else the province's), with the
    given status (a revoked one with its revocation decision, a year
    later). `previous`: the certificate it replaces (marked replaced).
    `instance_id`: the instance that issued it (default: one made here)."""
    assert status in CERTIFICATE_STATUSES, status
    product = session.get(Product, product_id)
    producer = session.get(Producer, product.producer_id)
    chain = area_chain(session, producer.commune_id)
    authority = authority or ("ministry" if stars == 5 else "province")
    issuer_area = chain["central" if authority == "ministry" else authority]
    instance = (session.get(ProcessInstance, instance_id) if instance_id is not None
                else _issuing_instance(session, product, chain, issued_on, kind))
    decision = _decision(session, "recognition", authority, issuer_area, issued_on)
    certificate = Certificate(
        number=_number(session, chain["province"], issued_on), verify_code=secrets.token_urlsafe(16)[:22],
        product_id=product.id, producer_id=producer.id, province_id=chain["province"], commune_id=producer.commune_id,
        group_code=product.group_code, producer_kind=producer.kind, stars=stars, kind=kind,
        instance_id=instance.id, decision_id=decision.id, issued_on=issued_on,
        valid_until=add_months(issued_on, certificate_validity_months()), status=status,
        previous_id=previous.id if previous is not None else None)
    session.add(certificate)
    session.flush()
    session.add(DecisionItem(decision_id=decision.id, instance_id=instance.id, product_id=product.id, stars=stars,
                             outcome=ITEM_RECOGNISED, certificate_id=certificate.id))
    if status == CERT_REVOKED:
        revoked_on = issued_on + timedelta(days=365)
        revocation = _decision(session, "revocation", authority, issuer_area, revoked_on)
        session.add(DecisionItem(decision_id=revocation.id, product_id=product.id, stars=stars,
                                 outcome=ITEM_REVOKED, certificate_id=certificate.id))
        certificate.revocation_decision_id, certificate.revocation_ground = revocation.id, "mark_misused"
        certificate.status_changed_on = revoked_on
    if previous is not None:
        previous.status, previous.status_changed_on = CERT_REPLACED, issued_on
    session.flush()
    return certificate


def list_certificate(session: Session, certificate: Certificate,
                     channels: tuple[str, ...] = ("ocop_sales_point", "ecommerce")) -> PromotionListing:
    """The certificate's listing in the promotion catalogue."""
    product = session.get(Product, certificate.product_id)
    producer = session.get(Producer, certificate.producer_id)
    listing = PromotionListing(
        instance_id=certificate.instance_id, product_id=product.id, product_name=product.name,
        producer_name=producer.name, commune_name=session.get(Jurisdiction, certificate.commune_id).name,
        province_id=certificate.province_id, group_code=product.group_code, stars=certificate.stars,
        certified_on=certificate.issued_on, valid_until=certificate.valid_until, channels=sorted(channels),
        certificate_id=certificate.id)
    session.add(listing)
    session.flush()
    return listing


def legacy_listing(session: Session, product_id: int, stars: int, certified_on: date,
                   valid_until: date, channels: tuple[str, ...] = ("trade_fair",)) -> PromotionListing:
    """A listing as the cycle published it before certificates existed
    (no certificate_id), from a completed cycle of `certified_on`'s year."""
    product = session.get(Product, product_id)
    producer = session.get(Producer, product.producer_id)
    chain = area_chain(session, producer.commune_id)
    instance = _issuing_instance(session, product, chain, certified_on, "new")
    listing = PromotionListing(
        instance_id=instance.id, product_id=product.id, product_name=product.name, producer_name=producer.name,
        commune_name=session.get(Jurisdiction, producer.commune_id).name, province_id=chain["province"],
        group_code=product.group_code, stars=stars, certified_on=certified_on, valid_until=valid_until,
        channels=sorted(channels), certificate_id=None)
    session.add(listing)
    session.flush()
    return listing


def product_id_of(session: Session, name: str) -> int:
    return session.scalar(select(Product.id).where(Product.name == name))


def _issuing_instance(session: Session, product: Product, chain: dict, issued_on: date,
                      kind: str) -> ProcessInstance:
    """The instance whose decision issued the certificate: a completed one
    of the kind's process (a cycle for a first certificate; the product's
    cycle of that year when no certificate or listing came from it yet)."""
    process_id = _ISSUING_PROCESS[kind]
    if process_id == PRODUCT_PROCESS:
        existing = session.scalar(select(ProcessInstance).where(
            ProcessInstance.product_id == product.id, ProcessInstance.process_id == PRODUCT_PROCESS,
            ProcessInstance.year == issued_on.year, ProcessInstance.status != "cancelled"))
        if existing is not None:
            taken = (session.scalar(select(Certificate.id).where(Certificate.instance_id == existing.id))
                     or session.scalar(select(PromotionListing.id).where(PromotionListing.instance_id == existing.id)))
            if taken is None:
                return existing
            process_id = CERTIFICATE_PROCESS  # the year's cycle already issued one
    definition_id = session.scalar(select(func.max(ProcessDefinition.id)))
    instance = ProcessInstance(definition_id=definition_id, process_id=process_id, product_id=product.id,
                               jurisdiction_id=chain["commune"], areas=chain, year=issued_on.year,
                               status="completed", state="{}", version=1)
    session.add(instance)
    session.flush()
    return instance


def _decision(session: Session, kind: str, authority: str, area_id: int, signed_on: date) -> Decision:
    count = session.scalar(select(func.count()).select_from(Decision).where(Decision.area_id == area_id))
    suffix = "QĐ-BNNMT" if authority == "ministry" else "QĐ-UBND"
    decision = Decision(kind=kind, authority=authority, area_id=area_id, number=f"{count + 101}/{suffix}",
                        signed_on=signed_on, signer=SIGNER)
    session.add(decision)
    session.flush()
    return decision


def _number(session: Session, province_id: int, issued_on: date) -> str:
    count = session.scalar(select(func.count()).select_from(Certificate))
    code = session.get(Jurisdiction, province_id).code
    return f"{code}-{issued_on.year}-{count + 1:05d}"
