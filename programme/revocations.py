"""Revocation of an OCOP certificate (thu hồi giấy chứng nhận, 26/2026 Art. 8),
for the province's OCOP coordination office and program manager who open
it on a competent body's conclusion, and for the authority that decides:
the province's People's Committee for 3 and 4 stars, the ministry for 5.

A revocation is an `ocop_revocation` instance (or the decision chain of an
`ocop_inspection` that proposed one): its decision task (form
`revocation_decision`) is never filled on the task page; `decide` writes
the numbered decision, completes the task and ends the certificate's
validity process in one transaction. Which certificate an instance is
about is in its start data (the `started` audit event), or in the
inspection's.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import access
from engine.access import SYSTEM_ACTOR, Actor
from engine.bpmn_engine import BpmnEngine
from engine.calendar import LOCAL_ZONE
from engine.errors import OcopError, TaskNotReady, UnknownTask
from engine.execution import Outcome
from engine.forms import CONTROL_CHARACTERS
from engine.process_ids import INSPECTION_PROCESS, REVOCATION_PROCESS
from storage.areas import area_chain
from storage.models import AuditEvent, InboxTask, Jurisdiction, ProcessInstance, Producer, Product, TimerDue
from storage.recognition_models import (
    CERT_VALID,
    ITEM_REVOKED,
    REVOCATION_GROUNDS,
    Certificate,
    Decision,
    DecisionItem,
)

DECISION_FORM = "revocation_decision"
# Art. 8.2: decided within 15 days of the conclusion.
DECIDE_WITHIN_DAYS = 15
CASE_PROCESSES = (REVOCATION_PROCESS, INSPECTION_PROCESS)
# The inspection's report task, and who concludes it (the diagram's script says the same).
INSPECTION_TASK = "task_inspection"
INSPECTION_CONCLUDED_BY = "Văn phòng Điều phối OCOP tỉnh"


class RevocationRefused(OcopError):
    """A revocation, decision or inspection the rules refuse; the message is
    Vietnamese then English, for the person who asked (nothing was written)."""


def local_today(now: datetime) -> date:
    return now.astimezone(LOCAL_ZONE).date()


def deadline_after(concluded_on: date) -> str:
    """The end of the 15th day after the conclusion, local time, as the ISO
    text the decision task's boundary timer takes."""
    return datetime.combine(concluded_on + timedelta(days=DECIDE_WITHIN_DAYS), time(23, 59, 59),
                            LOCAL_ZONE).isoformat()


def checked_text(value: str, field_vi: str, field_en: str, max_length: int, least: int = 1) -> str:
    """`value` stripped, when it is a plain text of the length asked."""
    value = (value or "").strip()
    if len(value) < least or len(value) > max_length or CONTROL_CHARACTERS.search(value):
        raise RevocationRefused(f"{field_vi}: cần từ {least} đến {max_length} ký tự, không có ký tự điều khiển / "
                                f"{field_en}: {least} to {max_length} characters, no control characters")
    return value


# --- opening a revocation ------------------------------------------------------------------

def certificate_to_look_after(session: Session, actor: Actor, certificate_id: int) -> tuple[Certificate, dict]:
    """The valid certificate and its area chain, when the actor may open a
    revocation or an inspection of it; else RevocationRefused. The row is
    locked till the caller commits: two people opening the same case at
    once start it once (PostgreSQL; SQLite writes one transaction at a time)."""
    certificate = session.get(Certificate, certificate_id, with_for_update=True)
    if certificate is None:
        raise RevocationRefused("Không có giấy chứng nhận này / no such certificate")
    areas = area_chain(session, certificate.commune_id)
    if not access.may_look_after_certificate(actor, certificate.stars, areas):
        raise RevocationRefused("Chỉ Văn phòng Điều phối OCOP hoặc quản lý chương trình của tỉnh (Bộ Nông nghiệp và "
                                "Môi trường với sản phẩm 5 sao) được làm việc này / only the province's OCOP office "
                                "or program manager (the ministry for 5 stars) may do this")
    if certificate.status != CERT_VALID:
        raise RevocationRefused(f"Giấy chứng nhận {certificate.number} không còn hiệu lực / "
                                f"certificate {certificate.number} is no longer valid")
    return certificate, areas


def open_revocation(engine: BpmnEngine, actor: Actor, certificate_id: int, ground: str, concluded_by: str,
                    concluded_on: date, summary: str) -> Outcome:
    """Start the revocation of a valid certificate on a competent body's
    conclusion (Art. 8.1, one of REVOCATION_GROUNDS): the decision is due
    15 days after `concluded_on`."""
    if ground not in REVOCATION_GROUNDS:
        raise RevocationRefused("Căn cứ thu hồi không hợp lệ / not a ground of Art. 8")
    concluded_by = checked_text(concluded_by, "Cơ quan kết luận", "concluded by", 300)
    summary = checked_text(summary, "Nội dung kết luận", "conclusion", 5000, least=5)
    if not isinstance(concluded_on, date) or concluded_on > local_today(engine.clock()):
        raise RevocationRefused("Ngày kết luận không được sau hôm nay / the conclusion cannot be dated after today")

    def work(session: Session) -> Outcome:
        certificate, _areas = certificate_to_look_after(session, actor, certificate_id)
        if running_case(session, certificate.id, REVOCATION_PROCESS) is not None:
            raise RevocationRefused(f"Giấy chứng nhận {certificate.number} đang được xem xét thu hồi / "
                                    "a revocation of this certificate is already open")
        data = {"certificate_id": certificate.id, "certificate_number": certificate.number,
                "stars": certificate.stars, "ground": ground, "concluded_by": concluded_by,
                "concluded_on": concluded_on.isoformat(), "decide_by": deadline_after(concluded_on),
                "summary": summary}
        return engine.start_lifecycle(REVOCATION_PROCESS, certificate.product_id, data, actor, unit=session)

    return engine.run(work)


# --- deciding -------------------------------------------------------------------------------

def decide(engine: BpmnEngine, actor: Actor, task_id: str, revoke: bool, number: str, signed_on: date | None,
           signer: str, reason: str) -> Outcome:
    """The authority's decision on a revocation task: when `revoke`, the
    numbered Decision (kind revocation) and its item (outcome revoked) are
    written, the task completed (the diagram then revokes the certificate
    and tells the producer, the commune and the office) and the
    certificate's validity process ended, all in one transaction; else the
    task is completed as kept, with the reason."""
    reason = (reason or "").strip()
    if revoke:
        number = checked_text(number, "Số quyết định", "decision number", 64)
        signer = checked_text(signer, "Người ký", "signer", 200)
        if not isinstance(signed_on, date) or signed_on > local_today(engine.clock()):
            raise RevocationRefused("Ngày ký không hợp lệ hoặc sau hôm nay / the signing date is missing or "
                                    "after today")
        if reason:
            reason = checked_text(reason, "Lý do", "reason", 5000)
    else:
        reason = checked_text(reason, "Lý do không thu hồi", "reason for keeping the certificate", 5000, least=5)

    def work(session: Session) -> Outcome:
        task, case = _decision_task(session, actor, task_id)
        data = {"revoke": bool(revoke), "decision": None, "reason": reason}
        if revoke:
            if session.scalar(select(Decision.id).where(Decision.area_id == task.jurisdiction_id,
                                                        Decision.number == number)) is not None:
                raise RevocationRefused(f"Số quyết định {number} đã được dùng / decision number {number} "
                                        "is already recorded")
            authority = "ministry" if task.role == "ministry" else "province"
            decision = Decision(kind="revocation", authority=authority, area_id=task.jurisdiction_id,
                                number=number, signed_on=signed_on, signer=signer, summary=reason,
                                recorded_by=actor.user_id, recorded_at=engine.clock())
            session.add(decision)
            session.flush()
            session.add(DecisionItem(decision_id=decision.id, instance_id=task.instance_id,
                                     product_id=case.certificate.product_id, stars=case.certificate.stars,
                                     outcome=ITEM_REVOKED, certificate_id=case.certificate.id))
            session.flush()
            data["decision"] = {"id": decision.id, "number": number, "signed_on": signed_on.isoformat(),
                                "signer": signer, "authority": authority}
        try:
            outcome = engine.complete_task(task_id, data, actor, unit=session, from_session=True)
        except (UnknownTask, TaskNotReady) as err:  # decided by someone else a moment ago
            raise RevocationRefused("Việc này vừa được quyết định; không có gì được ghi / this was decided a "
                                    "moment ago; nothing was saved") from err
        validity = case.certificate.lifecycle_instance_id
        if revoke and validity is not None and session.scalar(
                select(ProcessInstance.status).where(ProcessInstance.id == validity)) == "running":
            # The certificate's reminders, re-evaluation and expiry end with it.
            engine.cancel(validity, SYSTEM_ACTOR, f"Thu hồi theo quyết định số {number} ({actor.name})",
                          unit=session)
        return outcome

    return engine.run(work)


def _decision_task(session: Session, actor: Actor, task_id: str) -> tuple[InboxTask, "Case"]:
    """The waiting revocation task and its case, when the actor is its
    authority; else RevocationRefused with what is wrong."""
    gone = RevocationRefused("Việc này không còn chờ quyết định thu hồi (có thể vừa được quyết định); không có gì "
                             "được ghi / this no longer waits for a revocation decision (perhaps decided a "
                             "moment ago); nothing was saved")
    task = session.get(InboxTask, task_id)
    if task is None or task.form_key != DECISION_FORM:
        raise gone
    # Two deciders at once: the instance row is locked before anything is
    # written (the decision's item references it, and two such references
    # then each waiting on the other's update deadlock on PostgreSQL); the
    # one who waited finds the task gone.
    session.execute(select(ProcessInstance.id).where(ProcessInstance.id == task.instance_id).with_for_update())
    task = session.scalar(select(InboxTask).where(InboxTask.id == task_id)
                          .execution_options(populate_existing=True))
    if task is None:
        raise gone
    case = case_of(session, task.instance_id)
    if case is None:
        raise RevocationRefused("Không tìm thấy giấy chứng nhận của việc này / the task's certificate is missing")
    stars = case.certificate.stars
    if not access.may_decide_revocation(actor, stars, task):
        if stars == 5:
            raise RevocationRefused("Giấy chứng nhận 5 sao do Bộ Nông nghiệp và Môi trường quyết định thu hồi; "
                                    "không có gì được ghi / a 5-star certificate is revoked by the ministry; "
                                    "nothing was saved")
        raise RevocationRefused("Giấy chứng nhận 3-4 sao do Ủy ban nhân dân tỉnh của sản phẩm quyết định thu "
                                "hồi; không có gì được ghi / a 3- or 4-star certificate is revoked by the "
                                "product's provincial People's Committee; nothing was saved")
    return task, case


# --- reading cases ----------------------------------------------------------------------------

@dataclass
class Case:
    """A revocation or an inspection, as its start made it."""

    instance_id: int
    process_id: str
    status: str
    certificate: Certificate
    product_name: str
    start: dict               # its start data (ground, conclusion, reason, ...)
    areas: dict
    waiting: InboxTask | None = None   # its person's task, while one waits
    deadline: datetime | None = None   # the decision's 15 days, else the task's due date


def _start_data(session: Session, instance_ids: list[int]) -> dict[int, dict]:
    """Each instance's start data; for an inspection that proposed a
    revocation, its report's conclusion too (ground, findings, date), as a
    revocation's start data names them."""
    rows = session.execute(select(AuditEvent.instance_id, AuditEvent.kind, AuditEvent.data).where(
        AuditEvent.instance_id.in_(instance_ids),
        (AuditEvent.kind == "started") | ((AuditEvent.kind == "task_completed")
                                          & (AuditEvent.element_id == INSPECTION_TASK)))
        .order_by(AuditEvent.instance_id, AuditEvent.seq)).all()
    starts: dict[int, dict] = {}
    for instance_id, kind, data in rows:
        if kind == "started":
            starts[instance_id] = {**(data or {}).get("data", {}), **starts.get(instance_id, {})}
            continue
        report = (data or {}).get("form") or {}
        if report.get("propose_revocation"):
            starts.setdefault(instance_id, {}).update(
                ground=report.get("ground"), concluded_by=INSPECTION_CONCLUDED_BY,
                concluded_on=report.get("inspected_on"), summary=report.get("findings", ""))
    return starts


def case_of(session: Session, instance_id: int) -> Case | None:
    """The revocation or inspection case of one instance (None for another process)."""
    cases = cases_where(session, select(ProcessInstance).where(ProcessInstance.id == instance_id,
                                                               ProcessInstance.process_id.in_(CASE_PROCESSES)))
    return cases[0] if cases else None


def cases_where(session: Session, query) -> list[Case]:
    """The cases of the revocation and inspection instances `query` selects."""
    instances = list(session.scalars(query))
    if not instances:
        return []
    ids = [instance.id for instance in instances]
    starts = _start_data(session, ids)
    certificates = {c.id: c for c in session.scalars(select(Certificate).where(Certificate.id.in_(
        {starts.get(i, {}).get("certificate_id") for i in ids} - {None})))}
    names = dict(session.execute(select(Product.id, Product.name).where(
        Product.id.in_({instance.product_id for instance in instances}))).all())
    tasks = {task.instance_id: task for task in session.scalars(
        select(InboxTask).where(InboxTask.instance_id.in_(ids)).order_by(InboxTask.created_at))}
    timers = {}
    for timer in session.scalars(select(TimerDue).where(TimerDue.instance_id.in_(ids),
                                                        TimerDue.element_id.like("timer_revocation_%"))):
        timers[timer.instance_id] = timer.due_at
    cases = []
    for instance in instances:
        certificate = certificates.get(starts.get(instance.id, {}).get("certificate_id"))
        if certificate is None:
            continue
        task = tasks.get(instance.id)
        cases.append(Case(instance.id, instance.process_id, instance.status, certificate,
                          names.get(instance.product_id, ""), starts.get(instance.id, {}), dict(instance.areas),
                          task, timers.get(instance.id) or (task.due_at if task else None)))
    return cases


def running_case(session: Session, certificate_id: int, process_id: str) -> Case | None:
    """The certificate's running revocation (or inspection), if any."""
    certificate = session.get(Certificate, certificate_id)
    if certificate is None:
        return None
    for case in cases_where(session, select(ProcessInstance).where(
            ProcessInstance.product_id == certificate.product_id, ProcessInstance.process_id == process_id,
            ProcessInstance.status == "running")):
        if case.certificate.id == certificate_id:
            return case
    return None


# A list of open cases shows at most this many.
CASE_LIMIT = 300


def open_cases(session: Session, actor: Actor, process_id: str | None = None) -> list[Case]:
    """Running revocations and inspections of the certificates the actor
    looks after or decides on (access.looked_after_certificates), the most
    urgent first."""
    condition = access.looked_after_certificates(actor, Certificate.province_id, Certificate.stars)
    products = select(Certificate.product_id).where(condition)
    query = (select(ProcessInstance).where(
        ProcessInstance.process_id.in_((process_id,) if process_id else CASE_PROCESSES),
        ProcessInstance.status == "running", ProcessInstance.product_id.in_(products))
        .order_by(ProcessInstance.started_at).limit(CASE_LIMIT))
    cases = [case for case in cases_where(session, query)
             if access.may_see_certificate_case(actor, case.certificate.stars, case.areas)]
    far = datetime.max.replace(tzinfo=None)
    return sorted(cases, key=lambda case: (case.deadline.replace(tzinfo=None) if case.deadline else far))


def decision_case(session: Session, actor: Actor, task_id: str) -> Case | None:
    """The revocation task's case for the decision page, when the actor may
    decide it or looks after its certificate; else None."""
    task = session.get(InboxTask, task_id)
    if task is None or task.form_key != DECISION_FORM:
        return None
    case = case_of(session, task.instance_id)
    if case is None:
        return None
    if not (access.may_decide_revocation(actor, case.certificate.stars, task)
            or access.may_see_certificate_case(actor, case.certificate.stars, case.areas)):
        return None
    case.waiting = task
    return case


def certificates_of_province(session: Session, actor: Actor, province_id: int) -> list[Certificate]:
    """The province's valid certificates, for the actor who looks after them
    (the ministry: the 5-star ones), by number."""
    condition = access.looked_after_certificates(actor, Certificate.province_id, Certificate.stars)
    return list(session.scalars(select(Certificate).where(
        Certificate.province_id == province_id, Certificate.status == CERT_VALID, condition)
        .order_by(Certificate.number).limit(2000)))


@dataclass
class CertificateActions:
    """A certificate as the revocation and inspection page shows it."""

    certificate: Certificate
    product_name: str
    producer_name: str
    commune_name: str
    revocation: Case | None   # its open revocation, if any
    inspection: Case | None   # its inspection under way, if any


def certificate_actions(session: Session, actor: Actor, certificate_id: int) -> CertificateActions | None:
    """The certificate, when the actor may open a revocation or an
    inspection of it (whatever its status); else None."""
    certificate = session.get(Certificate, certificate_id)
    if certificate is None:
        return None
    if not access.may_look_after_certificate(actor, certificate.stars, area_chain(session, certificate.commune_id)):
        return None
    product = session.get(Product, certificate.product_id)
    producer, commune = session.execute(select(Producer.name, Jurisdiction.name).join(
        Jurisdiction, Jurisdiction.id == Producer.commune_id).where(Producer.id == product.producer_id)).one()
    return CertificateActions(certificate, product.name, producer, commune,
                              running_case(session, certificate.id, REVOCATION_PROCESS),
                              running_case(session, certificate.id, INSPECTION_PROCESS))


def provinces_looked_after(session: Session, actor: Actor) -> list[tuple[int, str]]:
    """The provinces whose certificates the actor opens revocations and
    plans inspections for (office, program manager), as (id, name) by name."""
    ids = set().union(*(actor.areas_of(role) for role in access.CERTIFICATE_KEEPERS))
    if not ids:
        return []
    return [tuple(row) for row in session.execute(
        select(Jurisdiction.id, Jurisdiction.name).where(Jurisdiction.id.in_(sorted(ids)),
                                                         Jurisdiction.level == "province")
        .order_by(Jurisdiction.name)).all()]
