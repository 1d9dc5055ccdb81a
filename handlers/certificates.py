"""The certificate lifecycle's own handlers (issue 16; the `ocop_certificate`
pool of the shipped diagrams):

- `certificate_status`: read before each reminder of the validity instance;
- `expire_certificate`: the certificate's validity ends (36 months, no
  successful re-evaluation): status `expired`, unless a re-evaluation, an
  upgrade or a revocation already changed it;
- `tell_province_office`: the 45-day escalation reaches the province's OCOP
  coordination office too (handlers/notify.py has no such recipient);
- `written_panel`: a re-evaluation is decided by written opinions, without
  a meeting (26/2026 Art. 7): the council of the product's province as it
  stands now, every active member "present", in the shape the council
  session's attendance has, so the cycle's `council_panel` and
  `rank_council` handlers and the sign-off work on it unchanged.

None is pure: they read or write rows, so a replay reuses their
recorded results.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate
from sqlalchemy import bindparam, insert, select, update

from handlers.context import HandlerContext
from handlers.council_rules import DEFAULT_SPREAD_LIMIT
from handlers.registry import handler
from storage.council_models import Council, CouncilMember
from storage.models import Notification, RoleAssignment, User
from storage.recognition_models import CERT_EXPIRED, CERT_VALID, Certificate


class ExpireParams(Schema):
    certificate_id = fields.Integer(required=True, validate=validate.Range(min=1))


@handler("expire_certificate", ExpireParams,
         "Ghi nhận giấy chứng nhận hết hiệu lực / the certificate's validity ends",
         result={"certificate_id": "id", "status": "its status after the call (expired, or what it already was)"})
def expire_certificate(context: HandlerContext, certificate_id: int) -> dict:
    connection = context.connection
    # Only a valid certificate expires: one replaced by a re-evaluation or an
    # upgrade, or revoked, keeps that status (and its date). A retry finds
    # it expired already and changes nothing.
    connection.execute(_EXPIRE, {"certificate_id": certificate_id, "today": context.today})
    status = connection.execute(_STATUS, {"certificate_id": certificate_id}).scalar()
    if status is None:
        raise ValueError(f"Không có giấy chứng nhận số {certificate_id} / no certificate {certificate_id}")
    return {"certificate_id": certificate_id, "status": status}


_certificates = Certificate.__table__
_EXPIRE = (update(_certificates)
           .where(_certificates.c.id == bindparam("certificate_id"), _certificates.c.status == CERT_VALID)
           .values(status=CERT_EXPIRED, status_changed_on=bindparam("today")))
_STATUS = select(_certificates.c.status).where(_certificates.c.id == bindparam("certificate_id"))


class WrittenPanelParams(Schema):
    level = fields.String(load_default="province", validate=validate.OneOf(("province", "central")))


@handler("written_panel", WrittenPanelParams,
         "Lấy ý kiến thành viên hội đồng bằng văn bản, không họp / the council members asked for written "
         "opinions, without a meeting",
         result={"members": "the council's active members (user_id, name, department, role)",
                 "present": "every member (a written opinion needs no attendance)",
                 "spread_limit": "the council's limit on members' totals", "chair_id": "user id",
                 "secretary_id": "user id", "written": "True", "council_id": "id or None"})
def written_panel(context: HandlerContext, level: str) -> dict:
    area_id = context.instance.areas.get(level)
    if area_id is None:
        raise ValueError(f"Sản phẩm không thuộc địa bàn cấp {level} nào / the product has no {level} area")
    connection = context.connection
    council = connection.execute(_COUNCIL, {"level": level, "area_id": area_id}).first()
    if council is not None:
        members = [{"user_id": uid, "name": name, "department": department or "", "role": role}
                   for uid, name, department, role in connection.execute(_SEATS, {"council_id": council.id})]
        rules = {"council_id": council.id, "council_name": council.name,
                 "quorum_fraction": float(council.quorum_fraction), "chair_required": bool(council.chair_required),
                 "spread_limit": float(council.spread_limit)}
    else:
        # No council recorded for the area (a sandbox, a demo): the holders
        # of the council's lane role, as engine.driver.council_roster does.
        holders = connection.execute(_HOLDERS, {"role": f"{level}_council", "area_id": area_id}).all()
        roles = ["secretary", "chair"] if len(holders) > 1 else ["chair"]
        members = [{"user_id": uid, "name": name, "department": "",
                    "role": roles[index] if index < len(roles) else "member"}
                   for index, (uid, name) in enumerate(holders)]
        rules = {"council_id": None, "council_name": "", "quorum_fraction": 0.75, "chair_required": True,
                 "spread_limit": DEFAULT_SPREAD_LIMIT}
    chair = next((m["user_id"] for m in members if m["role"] == "chair"), None)
    if chair is None:
        raise ValueError("Hội đồng chưa có chủ tịch: không lấy ý kiến bằng văn bản được / "
                         "the council has no chair: no written opinions can be asked")
    secretary = next((m["user_id"] for m in members if m["role"] == "secretary"), chair)
    return {"session_id": None, **rules, "held_on": context.today.isoformat(), "place": "",
            "members": members, "present": [m["user_id"] for m in members], "chair_id": chair,
            "secretary_id": secretary, "written": True}


_COUNCIL = select(Council.id, Council.name, Council.quorum_fraction, Council.chair_required,
                  Council.spread_limit).where(Council.level == bindparam("level"),
                                              Council.area_id == bindparam("area_id"), Council.active.is_(True))
_SEATS = (select(CouncilMember.user_id, User.full_name, CouncilMember.department, CouncilMember.council_role)
          .join(User, User.id == CouncilMember.user_id)
          .where(CouncilMember.council_id == bindparam("council_id"), CouncilMember.removed_at.is_(None))
          .order_by(CouncilMember.id))
_HOLDERS = (select(User.id, User.full_name).join(RoleAssignment, RoleAssignment.user_id == User.id)
            .where(RoleAssignment.role == bindparam("role"), RoleAssignment.jurisdiction_id == bindparam("area_id"),
                   User.is_active.is_(True))
            .order_by(User.id))


class StatusParams(Schema):
    certificate_id = fields.Integer(required=True, validate=validate.Range(min=1))


@handler("certificate_status", StatusParams,
         "Trạng thái hiện tại của giấy chứng nhận / the certificate's status now",
         result={"status": "valid, replaced, revoked or expired"})
def certificate_status(context: HandlerContext, certificate_id: int) -> dict:
    # A certificate replaced by an upgrade (or revoked) keeps its validity
    # instance until the next timer: the diagram then ends it quietly
    # instead of reminding anyone of a certificate no longer in force.
    status = context.connection.execute(_STATUS, {"certificate_id": certificate_id}).scalar()
    if status is None:
        raise ValueError(f"Không có giấy chứng nhận số {certificate_id} / no certificate {certificate_id}")
    return {"certificate_id": certificate_id, "status": status}


OFFICE_MESSAGES = {
    "reevaluation_late": "Đánh giá, phân hạng lại sản phẩm “{product}” đã quá 45 ngày kể từ khi hồ sơ đầy đủ "
                         "mà chưa có quyết định.",
}


class OfficeParams(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(tuple(OFFICE_MESSAGES)))


@handler("tell_province_office", OfficeParams,
         "Báo Văn phòng Điều phối OCOP tỉnh / tell the province's OCOP coordination office",
         result={"notification_id": "id"})
def tell_province_office(context: HandlerContext, kind: str) -> dict:
    # handlers/notify.py has no recipient for the office (issue 16 added the
    # role); a row for its role at the product's province, delivered like any.
    instance = context.instance
    product = instance.product
    inserted = context.connection.execute(_INSERT_NOTIFICATION, dict(
        instance_id=instance.id, recipient_role="province_office", producer_id=None,
        jurisdiction_id=instance.areas.get("province"), kind=f"office_{kind}",
        message=OFFICE_MESSAGES[kind].format(product=product.name if product else ""), reasons="",
        created_at=context.now, delivery_attempts=0))
    return {"notification_id": inserted.inserted_primary_key[0]}


_INSERT_NOTIFICATION = insert(Notification.__table__)
