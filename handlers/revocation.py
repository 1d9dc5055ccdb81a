"""revoke_certificate: a certificate withdrawn by a revocation decision
(26/2026 Art. 8), run by the `ocop_revocation` and `ocop_inspection`
processes after the People's Committee (3-4 stars) or the ministry (5
stars) decided to revoke.

The decision itself (its number, its item) is written by the decision use
case (programme/revocations.decide) in the same transaction, before the
task is completed; this handler changes the certificate: status revoked
from the decision's date, with the decision and the ground. Idempotent: a
retry finds the certificate revoked by the same decision and changes
nothing. Not pure (replay reuses its recorded result).
"""
from __future__ import annotations

from datetime import date

from marshmallow import Schema, fields, validate
from sqlalchemy import bindparam, select, update

from handlers.context import HandlerContext
from handlers.registry import handler
from storage.recognition_models import CERT_REVOKED, REVOCATION_GROUNDS, Certificate


class RevokeParams(Schema):
    certificate_id = fields.Integer(required=True, validate=validate.Range(min=1))
    decision = fields.Dict(required=True)
    ground = fields.String(required=True, validate=validate.OneOf(REVOCATION_GROUNDS))


class CertificateNotRevocable(ValueError):
    """The certificate is not this product's, or is already ended another way."""


@handler("revoke_certificate", RevokeParams,
         "Ghi nhận thu hồi giấy chứng nhận OCOP theo quyết định / mark a certificate revoked by its decision",
         result={"certificate_id": "id", "status": "revoked", "status_changed_on": "ISO date"})
def revoke_certificate(context: HandlerContext, certificate_id: int, decision: dict, ground: str) -> dict:
    connection = context.connection
    row = connection.execute(_CERTIFICATE, {"certificate_id": certificate_id}).first()
    if row is None or row.product_id != context.instance.product_id:
        raise CertificateNotRevocable(f"certificate {certificate_id} is not this product's")
    decision_id = int(decision["id"])
    signed_on = date.fromisoformat(str(decision["signed_on"]))
    if row.status == CERT_REVOKED:
        if row.revocation_decision_id != decision_id:
            raise CertificateNotRevocable(f"certificate {certificate_id} was revoked by another decision")
        return {"certificate_id": certificate_id, "status": CERT_REVOKED,
                "status_changed_on": row.status_changed_on.isoformat()}
    # A certificate replaced or expired meanwhile is still withdrawn: the
    # decision stands, and the catalogue shows valid certificates only.
    connection.execute(_REVOKE, {"certificate_id": certificate_id, "new_status": CERT_REVOKED,
                                 "changed_on": signed_on, "by_decision": decision_id, "on_ground": ground})
    return {"certificate_id": certificate_id, "status": CERT_REVOKED, "status_changed_on": signed_on.isoformat()}


_certificates = Certificate.__table__
_CERTIFICATE = select(_certificates.c.product_id, _certificates.c.status, _certificates.c.status_changed_on,
                      _certificates.c.revocation_decision_id).where(
    _certificates.c.id == bindparam("certificate_id"))
# (bind names other than the columns': SQLAlchemy reserves those in an UPDATE's SET)
_REVOKE = update(_certificates).where(_certificates.c.id == bindparam("certificate_id")).values(
    status=bindparam("new_status"), status_changed_on=bindparam("changed_on"),
    revocation_decision_id=bindparam("by_decision"), revocation_ground=bindparam("on_ground"))
