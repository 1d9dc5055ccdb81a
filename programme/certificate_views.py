"""What the certificate pages read: one certificate as printed (for its
producer and the officers of its area, engine.access.may_see_certificate),
as verified by anyone holding its QR code's link (/xac-minh/<code>: the
number, product, producer, decision and status, nothing else), a
producer's certificates for its portal, and a product's public page (its
valid certificate, its public description, where to buy it).

The photo on a product's public page is an image the producer tied to
its packaging criterion (A.2.2, "Đóng gói, bao bì sản phẩm" / "Bao bì,
ghi nhãn sản phẩm"): the product as it is sold, which anyone in a shop
sees. No other document is ever public: the rest of the evidence (legal
papers, lab tests, licences) is private to the product's readers.

A certificate whose status is still "valid" but whose validity has passed
reads as expired everywhere here: the expiry job (ocop_certificate's
`expire_certificate`) may not have run yet, and a reader must never be
told an expired certificate holds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased

from engine import access
from engine.access import Actor
from programme.catalogue import legacy_superseded
from storage.areas import area_chain
from storage.models import Document, Jurisdiction, Producer, Product, PromotionListing
from storage.recognition_models import CERT_EXPIRED, CERT_VALID, Certificate, Decision

# The unguessable part of a verification link: secrets.token_urlsafe's alphabet.
VERIFY_CODE = re.compile(r"[A-Za-z0-9_-]{16,32}")
# Looked up instead of a malformed code, so a wrong format costs the same
# statement as a code that is not there (no oracle on what is well formed).
_NO_CODE = "-" * 22
# The criterion whose images show the product as sold (every criteria set
# that has packaging numbers it A.2.2), and the image types a page shows.
PACKAGING_CRITERION = "A.2.2"
PHOTO_TYPES = ("image/jpeg", "image/png")
# How many of a product's newest images are looked through for a packaging one.
_PHOTO_CANDIDATES = 20


@dataclass(frozen=True)
class CertificateView:
    """One certificate with everything its pages print. `status` is the
    effective one (effective_status); `revocation_*` are set for a revoked
    one, `replaced_by` (the newer certificate's number) for a replaced one."""

    id: int
    number: str
    verify_code: str
    status: str
    stars: int
    kind: str
    issued_on: date
    valid_until: date
    status_changed_on: date | None
    product_id: int
    product_name: str
    group_code: str
    producer_id: int
    producer_name: str
    producer_kind: str
    commune_name: str
    district_name: str | None
    province_name: str
    decision_number: str
    decision_signed_on: date
    decision_signer: str
    decision_authority: str
    revocation_number: str | None
    revocation_signed_on: date | None
    replaced_by: str | None

    @property
    def holds(self) -> bool:
        return self.status == CERT_VALID


@dataclass(frozen=True)
class PublicProduct:
    """A product's public page: its public description, its valid
    certificate (None for a listing published before certificates
    existed: then stars and validity are the listing's), where to buy."""

    product_id: int
    product_name: str
    group_code: str
    producer_name: str
    producer_kind: str
    commune_name: str
    district_name: str | None
    province_name: str
    stars: int
    valid_from: date
    valid_until: date
    certificate: CertificateView | None
    channels: list[str]
    photo: Document | None = None


def effective_status(status: str, valid_until: date, today: date) -> str:
    """The stored status, except that a "valid" certificate past its
    valid_until is expired."""
    return CERT_EXPIRED if status == CERT_VALID and valid_until < today else status


# --- one statement for a certificate and everything printed with it ---------------------

_product, _producer = aliased(Product), aliased(Producer)
_commune, _up1, _up2 = aliased(Jurisdiction), aliased(Jurisdiction), aliased(Jurisdiction)
_province = aliased(Jurisdiction)
_decision, _revocation = aliased(Decision), aliased(Decision)
_successor = aliased(Certificate)


def _certificates() -> Select:
    """Certificates with their product, producer, areas, decisions and
    successor (outer joins where there may be none)."""
    return (select(Certificate, _product.name, _producer.name, _producer.kind, _commune.name, _up1.name,
                   _up1.level, _province.name, _decision.number, _decision.signed_on, _decision.signer,
                   _decision.authority, _revocation.number, _revocation.signed_on, _successor.number)
            .join(_product, _product.id == Certificate.product_id)
            .join(_producer, _producer.id == Certificate.producer_id)
            .join(_commune, _commune.id == Certificate.commune_id)
            .outerjoin(_up1, _up1.id == _commune.parent_id)
            .outerjoin(_up2, _up2.id == _up1.parent_id)
            .join(_province, _province.id == Certificate.province_id)
            .join(_decision, _decision.id == Certificate.decision_id)
            .outerjoin(_revocation, _revocation.id == Certificate.revocation_decision_id)
            .outerjoin(_successor, _successor.previous_id == Certificate.id))


def _view(row, today: date) -> CertificateView:
    (certificate, product_name, producer_name, producer_kind, commune_name, parent_name, parent_level,
     province_name, decision_number, signed_on, signer, authority, revocation_number, revoked_on,
     successor) = row
    return CertificateView(
        id=certificate.id, number=certificate.number, verify_code=certificate.verify_code,
        status=effective_status(certificate.status, certificate.valid_until, today), stars=certificate.stars,
        kind=certificate.kind, issued_on=certificate.issued_on, valid_until=certificate.valid_until,
        status_changed_on=certificate.status_changed_on, product_id=certificate.product_id,
        product_name=product_name, group_code=certificate.group_code, producer_id=certificate.producer_id,
        producer_name=producer_name, producer_kind=producer_kind, commune_name=commune_name,
        district_name=parent_name if parent_level == "district" else None, province_name=province_name,
        decision_number=decision_number, decision_signed_on=signed_on, decision_signer=signer,
        decision_authority=authority, revocation_number=revocation_number, revocation_signed_on=revoked_on,
        replaced_by=successor)


# --- the queries ------------------------------------------------------------------------------

def certificate_by_code(session: Session, code: str, today: date) -> CertificateView | None:
    """The certificate a verification link names, whatever its status; None
    when no certificate has that code. A malformed code runs the same
    lookup (with a code no certificate has) and answers the same None."""
    if not VERIFY_CODE.fullmatch(code or ""):
        code = _NO_CODE
    row = session.execute(_certificates().where(Certificate.verify_code == code).limit(1)).first()
    return _view(row, today) if row is not None else None


def readable_certificate(session: Session, actor: Actor, certificate_id: int, today: date) -> CertificateView | None:
    """The certificate if the actor may see it (access.may_see_certificate),
    else None: one the actor may not see reads as one that does not exist."""
    row = session.execute(_certificates().where(Certificate.id == certificate_id).limit(1)).first()
    if row is None:
        return None
    certificate = row[0]
    if not access.may_see_certificate(actor, certificate.producer_id,
                                      area_chain(session, certificate.commune_id).values()):
        return None
    return _view(row, today)


def seen_certificates(session: Session, actor: Actor, producer_ids: list[int], today: date) -> list[CertificateView]:
    """The certificates of these producers that the actor may see (a
    producer's portal: its own), newest first."""
    if not producer_ids:
        return []
    query = (_certificates().where(Certificate.producer_id.in_(sorted(set(producer_ids))),
                                   access.seen_certificates(actor, Certificate.producer_id, _commune, _up1, _up2))
             .order_by(Certificate.issued_on.desc(), Certificate.id.desc()))
    return [_view(row, today) for row in session.execute(query).all()]


def public_product(session: Session, product_id: int, today: date) -> PublicProduct | None:
    """A product's public page, while it has a valid certificate (the
    newest, if a replacement is being issued) or a listing from before
    certificates that is still within its validity; else None."""
    rows = session.execute(_certificates().where(
        Certificate.product_id == product_id, Certificate.status == CERT_VALID,
        Certificate.valid_until >= today).order_by(Certificate.issued_on.desc(), Certificate.id.desc())
        .limit(1)).all()
    if rows:
        certificate = _view(rows[0], today)
        channels = session.scalars(select(PromotionListing.channels).where(
            PromotionListing.certificate_id == certificate.id).order_by(PromotionListing.id.desc()).limit(1)).first()
        return PublicProduct(certificate.product_id, certificate.product_name, certificate.group_code,
                             certificate.producer_name, certificate.producer_kind, certificate.commune_name,
                             certificate.district_name, certificate.province_name, certificate.stars,
                             certificate.issued_on, certificate.valid_until, certificate, sorted(channels or []),
                             product_photo(session, product_id))
    return _legacy_listing(session, product_id, today)


def product_photo(session: Session, product_id: int) -> Document | None:
    """The product's newest image tied to its packaging criterion, if any
    (the only document a public page shows)."""
    images = session.scalars(select(Document).where(
        Document.product_id == product_id, Document.content_type.in_(PHOTO_TYPES))
        .order_by(Document.uploaded_at.desc(), Document.id.desc()).limit(_PHOTO_CANDIDATES))
    return next((image for image in images if PACKAGING_CRITERION in (image.criteria or [])), None)


def _legacy_listing(session: Session, product_id: int, today: date) -> PublicProduct | None:
    """A listing published before certificates existed (no certificate_id),
    still within its own validity, of a product that has no certificate
    (catalogue.legacy_superseded)."""
    listing = session.scalars(select(PromotionListing).where(
        PromotionListing.product_id == product_id, PromotionListing.certificate_id.is_(None),
        PromotionListing.valid_until >= today, ~legacy_superseded(PromotionListing.product_id)).order_by(PromotionListing.certified_on.desc(),
                                                        PromotionListing.id.desc()).limit(1)).first()
    if listing is None:
        return None
    row = session.execute(
        select(_product.group_code, _producer.name, _producer.kind, _commune.name, _up1.name, _up1.level,
               _province.name)
        .join(_producer, _producer.id == _product.producer_id)
        .join(_commune, _commune.id == _producer.commune_id)
        .outerjoin(_up1, _up1.id == _commune.parent_id)
        .join(_province, _province.id == listing.province_id)
        .where(_product.id == product_id)).one()
    group_code, producer_name, producer_kind, commune_name, parent_name, parent_level, province_name = row
    return PublicProduct(product_id, listing.product_name, group_code, producer_name, producer_kind, commune_name,
                         parent_name if parent_level == "district" else None, province_name, listing.stars,
                         listing.certified_on, listing.valid_until, None, sorted(listing.channels or []),
                         product_photo(session, product_id))
