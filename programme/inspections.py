"""Inspection after recognition (kiểm tra sau công nhận, 26/2026 Art. 9),
for the province's OCOP coordination office and program manager (the
ministry for 5-star certificates): periodic, planned for a year over a
province's valid certificates, or ad hoc for one certificate with its
reason. Each is an `ocop_inspection` instance whose report may propose a
revocation, then decided as in programme/revocations.py.
"""
from __future__ import annotations

import math
import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import access
from engine.access import Actor
from engine.bpmn_engine import BpmnEngine
from engine.errors import NotAllowed
from engine.execution import Outcome
from engine.process_ids import INSPECTION_PROCESS
from programme.revocations import (
    RevocationRefused,
    cases_where,
    certificate_to_look_after,
    checked_text,
    local_today,
    running_case,
)
from storage.areas import area_chain
from storage.models import Jurisdiction, ProcessInstance
from storage.recognition_models import CERT_VALID, Certificate

PERIODIC, AD_HOC = "periodic", "ad_hoc"
# A year's plan starts at most this many inspections at once.
MAX_PLANNED = 500


def _start(engine: BpmnEngine, session: Session, actor: Actor, certificate: Certificate, kind: str,
           reason: str, year: int) -> Outcome:
    if running_case(session, certificate.id, INSPECTION_PROCESS) is not None:
        raise RevocationRefused(f"Giấy chứng nhận {certificate.number} đang được kiểm tra / "
                                f"certificate {certificate.number} is already being inspected")
    data = {"certificate_id": certificate.id, "certificate_number": certificate.number, "stars": certificate.stars,
            "inspection_kind": kind, "reason": reason, "plan_year": year}
    return engine.start_lifecycle(INSPECTION_PROCESS, certificate.product_id, data, actor, unit=session)


def start_inspection(engine: BpmnEngine, actor: Actor, certificate_id: int, reason: str) -> Outcome:
    """An ad hoc inspection of one valid certificate, with its reason (a
    complaint, a finding of another body)."""
    reason = checked_text(reason, "Lý do kiểm tra", "reason for the inspection", 2000, least=5)

    def work(session: Session) -> Outcome:
        certificate, _areas = certificate_to_look_after(session, actor, certificate_id)
        return _start(engine, session, actor, certificate, AD_HOC, reason, local_today(engine.clock()).year)

    return engine.run(work)


def plan_inspections(engine: BpmnEngine, actor: Actor, province_id: int, year: int,
                     certificate_ids: list[int] | None = None, share: float | None = None) -> list[int]:
    """The year's periodic inspections of a province: one instance per
    chosen valid certificate, either the `certificate_ids` named or a
    `share` (0-1] of those the actor looks after, drawn the same way for
    the same province and year; certificates inspected periodically this
    year already, or under inspection now, are left out. All or nothing.
    Returns the new instances' ids."""
    if (certificate_ids is None) == (share is None):
        raise RevocationRefused("Chọn giấy chứng nhận hoặc tỷ lệ kiểm tra / name certificates or a share")
    if share is not None and not 0 < share <= 1:
        raise RevocationRefused("Tỷ lệ kiểm tra phải trong khoảng (0, 1] / the share must be in (0, 1]")
    this_year = local_today(engine.clock()).year
    if year not in (this_year, this_year + 1):
        raise RevocationRefused(f"Chỉ lập kế hoạch cho năm {this_year} hoặc {this_year + 1} / "
                                f"plans are for {this_year} or {this_year + 1}")

    def work(session: Session) -> list[int]:
        province = session.get(Jurisdiction, province_id)
        if province is None or province.level != "province":
            raise RevocationRefused("Không có tỉnh này / no such province")
        # A plan is the province's office's or program manager's (and the
        # ministry's, for 5 stars): anyone else is refused before anything.
        if not access.may_look_after_certificate(actor, 5, {"province": province_id, "central": province.parent_id}):
            raise NotAllowed("Chỉ Văn phòng Điều phối hoặc cơ quan quản lý OCOP của tỉnh được lập kế hoạch "
                             "kiểm tra / only the province's OCOP office plans its inspections")
        planned = _planned_this_year(session, province_id, year)
        if certificate_ids is not None:
            chosen = []
            for certificate_id in dict.fromkeys(certificate_ids):
                certificate, _areas = certificate_to_look_after(session, actor, certificate_id)
                if certificate.province_id != province_id:
                    raise RevocationRefused(f"Giấy chứng nhận {certificate.number} không thuộc tỉnh này / "
                                            "a certificate of another province")
                if certificate.id in planned:
                    raise RevocationRefused(f"Giấy chứng nhận {certificate.number} đã có trong kế hoạch năm "
                                            f"{year} / already planned for {year}")
                chosen.append(certificate)
        else:
            pool = [c for c in session.scalars(select(Certificate).where(
                Certificate.province_id == province_id, Certificate.status == CERT_VALID)
                .order_by(Certificate.id)) if c.id not in planned]
            pool = [c for c in pool if access.may_look_after_certificate(actor, c.stars, _areas_of(session, c))]
            if not pool:
                raise RevocationRefused("Không còn giấy chứng nhận nào để kiểm tra / no certificate left to inspect")
            count = min(len(pool), max(1, math.ceil(share * len(pool))))
            chosen = sorted(random.Random(f"{province_id}-{year}").sample(pool, count), key=lambda c: c.id)
        if len(chosen) > MAX_PLANNED:
            raise RevocationRefused(f"Tối đa {MAX_PLANNED} cuộc kiểm tra một lần / at most {MAX_PLANNED} at once")
        return [_start(engine, session, actor, certificate, PERIODIC, f"Kiểm tra định kỳ năm {year}",
                       year).instance_id for certificate in chosen]

    return engine.run(work)


def _areas_of(session: Session, certificate: Certificate) -> dict:
    return area_chain(session, certificate.commune_id)


def _planned_this_year(session: Session, province_id: int, year: int) -> set[int]:
    """Certificates of the province with a periodic inspection of `year`
    (running or done)."""
    products = select(Certificate.product_id).where(Certificate.province_id == province_id)
    query = select(ProcessInstance).where(ProcessInstance.process_id == INSPECTION_PROCESS,
                                          ProcessInstance.status != "cancelled",
                                          ProcessInstance.product_id.in_(products))
    return {case.certificate.id for case in cases_where(session, query)
            if case.start.get("inspection_kind") == PERIODIC and case.start.get("plan_year") == year}
