"""A certificate's life after its decision (issue 16; 26/2026 Art. 6-7),
for the producer, the commune and the province's officers: its validity
instance (`ocop_certificate`: reminders, the re-evaluation window, expiry),
the upgrade a producer asks for (`ocop_upgrade`), and what the product page
says of them.

Use cases: `start_validity` (after decisions: one validity instance per
valid certificate), `start_upgrade` (the producer's request). Queries:
`reevaluation_window`, `certificate_life`, `product_certificate`,
`upgrade_changes`.

The dates of the validity instance are computed here once, when it starts,
and handed to the diagram as ISO texts its timers wait on (local time,
+07:00): a province that changes the diagram changes what happens at those
dates, not the dates the rules set (180 to 120 days before expiry).
No job of its own ends a certificate's validity: the worker's `timers` job
(background/timers.py) fires the instance's `expires_at` timer, and the
diagram's `expire_certificate` service task records it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import access
from engine.access import Actor
from engine.bpmn_engine import BpmnEngine
from engine.calendar import LOCAL_ZONE
from engine.errors import NotAllowed, OcopError
from engine.process_ids import CERTIFICATE_PROCESS, UPGRADE_PROCESS
from storage.areas import area_chain
from storage.models import AuditEvent, InboxTask, ProcessInstance, Product
from storage.recognition_models import CERT_VALID, Certificate

# 26/2026 Art. 7: the re-evaluation dossier is filed 180 to 120 days before
# the certificate expires and decided within 45 days of a complete dossier.
WINDOW_OPENS_DAYS, WINDOW_CLOSES_DAYS = 180, 120
REMINDER_DAYS = 30  # before the window opens: time to gather lab tests and papers
DECISION_DAYS = 45
MAX_UPGRADE_FROM = 4  # a 5-star product has no higher rank
# Elements of a validity instance that mean "its re-evaluation is under way":
# the dossier was filed and someone other than the producer now acts.
REEVALUATION_ELEMENTS = ("task_reevaluation_check", "task_opinion_reevaluation", "task_attendance_reevaluation",
                         "task_sign_off_reevaluation", "task_decision_reevaluation",
                         "task_decision_reevaluation_central")


# Why an upgrade may not be asked for now: code -> Vietnamese (pages translate the code).
UPGRADE_REFUSALS = {
    "not_valid": "Giấy chứng nhận không còn hiệu lực: không đề nghị nâng hạng được.",
    "five_stars": "Sản phẩm đã đạt 5 sao, hạng cao nhất.",
    "upgrade_running": "Sản phẩm đang có một đề nghị nâng hạng chưa xong.",
    "reevaluation": "Sản phẩm đang được đánh giá, phân hạng lại: chờ kết quả trước khi đề nghị nâng hạng.",
    "not_producer": "Chỉ chủ thể sở hữu sản phẩm được đề nghị nâng hạng.",
}


class CertificateRefused(OcopError):
    """A request about a certificate the rules refuse; the message is
    Vietnamese, for the person who asked (nothing was written); `code`
    names the rule (UPGRADE_REFUSALS)."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


class UnknownCertificate(CertificateRefused):
    """No such certificate, or one the actor may not see (pages answer 404)."""


@dataclass(frozen=True)
class ReevaluationWindow:
    """When the producer is reminded, when re-evaluation dossiers are
    accepted (opens..closes, both days included) and the last valid day."""

    reminder_on: date
    opens: date
    closes: date
    valid_until: date

    def state(self, today: date) -> str:
        """before | open | closed | expired"""
        if today > self.valid_until:
            return "expired"
        if today < self.opens:
            return "before"
        return "open" if today <= self.closes else "closed"

    def timers(self) -> dict[str, str]:
        """The validity instance's timer values (ISO, local time): the
        reminder in the morning, the window from the start of its first day
        to the end of its last, expiry at the end of the last valid day."""
        return {"reminder_at": _local(self.reminder_on, time(8, 0)), "window_opens": _local(self.opens, time(0, 0)),
                "window_closes": _local(self.closes, time(23, 59, 59)),
                "expires_at": _local(self.valid_until, time(23, 59, 59))}


def _local(day: date, at: time) -> str:
    return datetime.combine(day, at, tzinfo=LOCAL_ZONE).isoformat()


def reevaluation_window(valid_until: date) -> ReevaluationWindow:
    opens = valid_until - timedelta(days=WINDOW_OPENS_DAYS)
    return ReevaluationWindow(opens - timedelta(days=REMINDER_DAYS), opens,
                              valid_until - timedelta(days=WINDOW_CLOSES_DAYS), valid_until)


def _local_today(engine: BpmnEngine) -> date:
    return engine.clock().astimezone(LOCAL_ZONE).date()


# --- use cases -------------------------------------------------------------------------------------

def validity_data(certificate: Certificate) -> dict:
    """The start data of a certificate's validity instance (the contract's keys)."""
    return {"certificate_id": certificate.id, "certificate_number": certificate.number, "stars": certificate.stars,
            "valid_until": certificate.valid_until.isoformat(),
            **reevaluation_window(certificate.valid_until).timers()}


def start_validity(engine: BpmnEngine, unit: Session, actor: Actor) -> list[int]:
    """Start an `ocop_certificate` instance for every valid certificate that
    has none, in the caller's transaction (`unit`): the decision use case
    calls it after the decisions it recorded issued certificates. The rows
    are locked first, so two callers at once start one instance each.
    Returns the instances started."""
    waiting = unit.scalars(select(Certificate).where(Certificate.status == CERT_VALID,
                                                     Certificate.lifecycle_instance_id.is_(None))
                           .order_by(Certificate.id).with_for_update()).all()
    started = []
    for certificate in waiting:
        outcome = engine.start_lifecycle(CERTIFICATE_PROCESS, certificate.product_id, validity_data(certificate),
                                         actor, unit=unit)
        certificate.lifecycle_instance_id = outcome.instance_id
        started.append(outcome.instance_id)
    unit.flush()
    return started


def start_upgrade(engine: BpmnEngine, actor: Actor, certificate_id: int) -> int:
    """The producer asks to upgrade (nâng hạng) a certified product: its own
    product, a valid certificate below 5 stars, no upgrade already running
    and no re-evaluation under way. Starts `ocop_upgrade` at the dossier
    (no idea, no plan) -- one transaction. Returns the instance id."""

    def work(session: Session) -> int:
        # Taking the certificate's row first makes a second request at the
        # same moment wait, then find the first one's instance.
        locked = session.execute(update(Certificate).where(Certificate.id == certificate_id)
                                 .values(status=Certificate.status)).rowcount
        certificate = session.get(Certificate, certificate_id) if locked else None
        if certificate is None:
            raise UnknownCertificate(f"Không có giấy chứng nhận số {certificate_id}.")
        if not access.may_request_upgrade(actor, certificate.producer_id):
            raise NotAllowed(UPGRADE_REFUSALS["not_producer"])
        refusal = upgrade_refusal(session, certificate, _local_today(engine))
        if refusal:
            raise CertificateRefused(UPGRADE_REFUSALS[refusal], refusal)
        data = {"certificate_id": certificate.id, "certificate_number": certificate.number,
                "stars": certificate.stars, "recognised_on": certificate.issued_on.isoformat(),
                "valid_until": certificate.valid_until.isoformat()}
        return engine.start_lifecycle(UPGRADE_PROCESS, certificate.product_id, data, actor, unit=session).instance_id

    return engine.run(work)


def upgrade_refusal(session: Session, certificate: Certificate, today: date) -> str | None:
    """Why this certificate's product may not ask for an upgrade now (a
    code of UPGRADE_REFUSALS), or None."""
    if certificate.status != CERT_VALID or certificate.valid_until < today:
        return "not_valid"
    if certificate.stars > MAX_UPGRADE_FROM:
        return "five_stars"
    if running_upgrade(session, certificate.product_id) is not None:
        return "upgrade_running"
    if reevaluation_under_way(session, certificate):
        return "reevaluation"
    return None


# --- queries ---------------------------------------------------------------------------------------

def running_upgrade(session: Session, product_id: int) -> int | None:
    """The product's running upgrade instance, if any."""
    return session.scalar(select(ProcessInstance.id).where(
        ProcessInstance.product_id == product_id, ProcessInstance.process_id == UPGRADE_PROCESS,
        ProcessInstance.status == "running").limit(1))


def reevaluation_under_way(session: Session, certificate: Certificate) -> bool:
    """Whether the certificate's re-evaluation dossier was filed and is now
    with the commune, the council or the decision maker."""
    if certificate.lifecycle_instance_id is None:
        return False
    return session.scalar(select(InboxTask.id).where(
        InboxTask.instance_id == certificate.lifecycle_instance_id,
        InboxTask.element_id.in_(REEVALUATION_ELEMENTS)).limit(1)) is not None


@dataclass(frozen=True)
class LifeInstance:
    id: int
    process_id: str
    status: str
    end_event: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class CertificateLife:
    """A certificate with its dates and the instances that carry its life:
    its validity instance, and the product's upgrades since it was issued."""

    certificate: Certificate
    window: ReevaluationWindow
    validity: LifeInstance | None
    upgrades: list[LifeInstance]
    previous: Certificate | None
    next: Certificate | None


def _life_instance(row: ProcessInstance | None) -> LifeInstance | None:
    if row is None:
        return None
    return LifeInstance(row.id, row.process_id, row.status, row.end_event, row.started_at, row.finished_at)


def certificate_life(session: Session, certificate_id: int) -> CertificateLife | None:
    """The certificate's life, or None when there is no such certificate
    (callers check who may read it: `readable_certificate_life`)."""
    certificate = session.get(Certificate, certificate_id)
    if certificate is None:
        return None
    validity = (session.get(ProcessInstance, certificate.lifecycle_instance_id)
                if certificate.lifecycle_instance_id else None)
    upgrades = session.scalars(select(ProcessInstance).where(
        ProcessInstance.product_id == certificate.product_id, ProcessInstance.process_id == UPGRADE_PROCESS)
        .order_by(ProcessInstance.id)).all()
    previous = session.get(Certificate, certificate.previous_id) if certificate.previous_id else None
    following = session.scalar(select(Certificate).where(Certificate.previous_id == certificate.id).limit(1))
    return CertificateLife(certificate, reevaluation_window(certificate.valid_until), _life_instance(validity),
                           [_life_instance(u) for u in upgrades], previous, following)


def readable_certificate_life(session: Session, actor: Actor, certificate_id: int) -> CertificateLife | None:
    """certificate_life, when the actor may read the certificate's product
    (its producer, the officers of its areas, auditors), else None."""
    life = certificate_life(session, certificate_id)
    if life is None:
        return None
    areas = area_chain(session, life.certificate.commune_id).values()
    return life if access.may_read_product(actor, life.certificate.producer_id, areas) else None


@dataclass(frozen=True)
class ProductCertificate:
    """What the producer's product page says of its certificate: the valid
    certificate, the re-evaluation window (and where today stands in it),
    and whether the producer may ask for an upgrade now (else why not)."""

    certificate: Certificate
    window: ReevaluationWindow
    window_state: str
    may_upgrade: bool
    upgrade_refusal: str | None  # a code of UPGRADE_REFUSALS
    upgrade_instance_id: int | None
    # The running upgrade's and the re-evaluation's tasks waiting for the producer, if any.
    producer_task_ids: tuple[str, ...]


def product_certificate(session: Session, actor: Actor, product_id: int, today: date) -> ProductCertificate | None:
    """The product's valid certificate as its page shows it, or None (no
    valid certificate, or a product the actor may not read)."""
    product = session.get(Product, product_id)
    if product is None:
        return None
    certificate = session.scalar(select(Certificate).where(
        Certificate.product_id == product_id, Certificate.status == CERT_VALID)
        .order_by(Certificate.issued_on.desc(), Certificate.id.desc()).limit(1))
    if certificate is None:
        return None
    if not access.may_read_product(actor, certificate.producer_id,
                                   area_chain(session, certificate.commune_id).values()):
        return None
    window = reevaluation_window(certificate.valid_until)
    refusal = upgrade_refusal(session, certificate, today)
    if refusal is None and not access.may_request_upgrade(actor, certificate.producer_id):
        refusal = "not_producer"
    upgrade = running_upgrade(session, product_id)
    instances = [i for i in (upgrade, certificate.lifecycle_instance_id) if i is not None]
    waiting = session.scalars(select(InboxTask.id).where(
        InboxTask.instance_id.in_(instances), InboxTask.role == "producer").order_by(InboxTask.created_at)).all()
    return ProductCertificate(certificate, window, window.state(today), refusal is None, refusal, upgrade,
                              tuple(waiting) if instances else ())


@dataclass(frozen=True)
class UpgradeChanges:
    """What the council's sheet page shows for an upgrade: the rank and
    date of the last recognition, and what the producer says changed since."""

    certificate_number: str
    stars: int
    recognised_on: date
    summary: str
    criteria_touched: list[str]
    changes: str
    evidence: list[str]


def upgrade_changes(session: Session, instance_id: int) -> UpgradeChanges | None:
    """For an upgrade instance, what changed since the recognition (from its
    start and its latest filed dossier, as the audit trail records them);
    None for any other instance. The caller has checked the reader may see
    the instance (its task page)."""
    instance = session.get(ProcessInstance, instance_id)
    if instance is None or instance.process_id != UPGRADE_PROCESS:
        return None
    started = session.scalar(select(AuditEvent.data).where(AuditEvent.instance_id == instance_id,
                                                           AuditEvent.kind == "started"))
    certificate = session.get(Certificate, ((started or {}).get("data") or {}).get("certificate_id") or 0)
    if certificate is None:
        return None
    filed = session.scalar(select(AuditEvent.data).where(
        AuditEvent.instance_id == instance_id, AuditEvent.kind == "task_completed",
        AuditEvent.element_id == "task_upgrade_dossier").order_by(AuditEvent.seq.desc()).limit(1))
    dossier = (filed or {}).get("form") or {}
    return UpgradeChanges(certificate.number, certificate.stars, certificate.issued_on, dossier.get("summary", ""),
                          list(dossier.get("criteria_touched") or []), dossier.get("changes", ""),
                          list(dossier.get("evidence") or []))


def local_today(engine: BpmnEngine) -> date:
    """Today in Vietnam by the engine's clock (pages compare windows to it)."""
    return _local_today(engine)
