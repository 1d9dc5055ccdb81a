"""Recognition decisions (quyết định công nhận) as the People's Committees
and the ministry record them: the products waiting for a decision in their
lane and area, with what the council's result proposes; issuing one
numbered decision (number, date, signer) for several products, which
completes each product's `recognition_decision` task -- the diagram then
issues the certificate, or sends a 90+ product to the ministry; a
decision's own page.

One decision is one transaction (engine.run): a refused number, signer,
date or actor, or a product no longer waiting, writes nothing. Who may
issue is engine/access.py's may_issue_decision (the authority's role
holder for the issuing area itself).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import access
from engine.access import Actor
from engine.bpmn_engine import BpmnEngine
from engine.errors import NotAllowed, OcopError, TaskNotReady, UnknownTask
from programme import certificates
from storage.areas import area_chain
from storage.decisions import number_taken, record_decision
from storage.models import AuditEvent, InboxTask, Jurisdiction, ProcessInstance, Producer, Product
from storage.recognition_models import AUTHORITIES, Certificate, Decision, DecisionItem, EvaluationRound, RoundEntry
from storage.round_calendar import round_label

RECOGNITION_FORM = "recognition_decision"
NUMBER_MAX, SIGNER_MAX = 64, 200
OUTCOME_VI = {"recognised": "Công nhận", "proposed_five": "Công nhận kết quả, đề nghị Bộ công nhận 5 sao",
              "not_recognised": "Không công nhận", "revoked": "Thu hồi"}


class DecisionRefused(OcopError):
    """A decision the rules refuse; the message is Vietnamese / English for
    the person who asked (nothing was written)."""


class UnknownDecision(DecisionRefused):
    """No such decision, or one the actor may not see (pages answer 404)."""


@dataclass
class WaitingForDecision:
    task_id: str
    instance_id: int
    product_id: int | None
    product_name: str
    producer_name: str
    proposal: dict
    round_id: int | None
    round_label: str
    waiting_since: object


def proposals_of(session: Session, instance_ids: list[int]) -> dict[int, dict]:
    """instance id -> the latest `proposal` its diagram set, read from the
    audit events' data changes (no workflow is deserialized)."""
    found: dict[int, dict] = {}
    if not instance_ids:
        return found
    for instance_id, data in session.execute(
            select(AuditEvent.instance_id, AuditEvent.data)
            .where(AuditEvent.instance_id.in_(list(instance_ids)),
                   AuditEvent.kind.in_(("task_completed", "timer_fired", "service_retried", "service_skipped")))
            .order_by(AuditEvent.instance_id, AuditEvent.seq.desc())):
        if instance_id in found:
            continue
        proposal = ((data or {}).get("delta") or {}).get("set", {}).get("proposal")
        if isinstance(proposal, dict):
            found[instance_id] = proposal
    return found


def _waiting_tasks(session: Session, authority: str, area_id: int, instance_ids=None):
    query = (select(InboxTask).where(InboxTask.form_key == RECOGNITION_FORM,
                                     InboxTask.role == access.AUTHORITY_ROLES[authority],
                                     InboxTask.jurisdiction_id == area_id)
             .order_by(InboxTask.created_at, InboxTask.id))
    if instance_ids is not None:
        query = query.where(InboxTask.instance_id.in_(list(instance_ids)))
    return list(session.scalars(query))


def may_see_area(session: Session, actor: Actor, authority: str, area_id: int) -> bool:
    """See what waits for the authority's decision in the area: its role
    holder, and whoever may read the province's rounds."""
    if authority in access.AUTHORITY_ROLES and access.may_issue_decision(actor, authority, area_id):
        return True
    province = None if authority == "ministry" else area_chain(session, area_id).get("province")
    return access.may_see_rounds(actor, province)


def waiting_for_decision(session: Session, actor: Actor, authority: str, area_id: int,
                         round_id: int | None = None) -> list[WaitingForDecision]:
    """The products whose recognition_decision task is ready in the
    authority's lane for the area, with their proposal and round; with
    `round_id`, those of that round (and, for the province, those the
    province recognises on the ministry's result, whose round is the
    ministry's)."""
    if authority not in AUTHORITIES:
        raise DecisionRefused("Không có cơ quan ra quyết định này. / No such authority.")
    if not may_see_area(session, actor, authority, area_id):
        raise NotAllowed("Không được xem sản phẩm chờ quyết định ở địa bàn này. / Not your area.")
    tasks = _waiting_tasks(session, authority, area_id)
    ids = [t.instance_id for t in tasks]
    proposals = proposals_of(session, ids)
    rounds = {row.instance_id: row for row in session.execute(
        select(RoundEntry.instance_id, EvaluationRound.id, EvaluationRound.level, EvaluationRound.number,
               EvaluationRound.year, EvaluationRound.extra)
        .join(EvaluationRound, EvaluationRound.id == RoundEntry.round_id)
        .where(RoundEntry.instance_id.in_(ids), RoundEntry.left_at.is_(None)))} if ids else {}
    names = {row.id: row for row in session.execute(
        select(Product.id, Product.name, Producer.name.label("producer")).join(Producer)
        .where(Product.id.in_([t.product_id for t in tasks if t.product_id])))} if tasks else {}
    found = []
    for task in tasks:
        entry = rounds.get(task.instance_id)
        if round_id is not None and entry is not None and entry.id != round_id and not (
                authority == "province" and entry.level == "central"):
            continue
        product = names.get(task.product_id)
        found.append(WaitingForDecision(
            task.id, task.instance_id, task.product_id, product.name if product else task.name,
            product.producer if product else "", proposals.get(task.instance_id, {}),
            entry.id if entry else None, round_label(entry.number, entry.year, entry.extra) if entry else "",
            task.created_at))
    return found


def issue_decision(engine: BpmnEngine, actor: Actor, area_id: int, authority: str, number: str, signed_on: date,
                   signer: str, instance_ids, round_id: int | None = None) -> int:
    """Record a numbered recognition decision for the products (instances)
    waiting in the authority's lane at the area, and complete each one's
    decision task with it. All or nothing. Returns the decision's id."""
    number = " ".join((number or "").split())
    signer = " ".join((signer or "").split())
    instance_ids = list(dict.fromkeys(int(i) for i in instance_ids))

    def work(session: Session) -> int:
        if authority not in AUTHORITIES:
            raise DecisionRefused("Không có cơ quan ra quyết định này. / No such authority.")
        if not access.may_issue_decision(actor, authority, area_id):
            raise NotAllowed("Chỉ Ủy ban nhân dân (hoặc Bộ) có thẩm quyền của địa bàn này được ghi quyết định. / "
                             "Only the authority of this area records its decisions.")
        if not number or len(number) > NUMBER_MAX:
            raise DecisionRefused(f"Số quyết định phải có từ 1 đến {NUMBER_MAX} ký tự. / "
                                  f"The number needs 1 to {NUMBER_MAX} characters.")
        if not signer or len(signer) > SIGNER_MAX:
            raise DecisionRefused("Ghi rõ người ký quyết định. / Name who signed the decision.")
        if not isinstance(signed_on, date):
            raise DecisionRefused("Ngày ký không hợp lệ. / Invalid signing date.")
        if signed_on > engine.clock().date():
            raise DecisionRefused("Ngày ký không được ở tương lai. / The signing date is in the future.")
        if not instance_ids:
            raise DecisionRefused("Chọn ít nhất một sản phẩm. / Choose at least one product.")
        # Lock the products' instances first, in id order, as every engine call does before it writes:
        # a concurrent decision for one of them then waits here, and finds it decided.
        session.execute(select(ProcessInstance.id).where(ProcessInstance.id.in_(instance_ids))
                        .order_by(ProcessInstance.id).with_for_update())
        if number_taken(session, area_id, number):
            raise DecisionRefused(f"Số quyết định {number} đã được dùng. / Decision number {number} is taken.")
        tasks = {t.instance_id: t for t in _waiting_tasks(session, authority, area_id, instance_ids)}
        if set(instance_ids) - set(tasks):
            raise DecisionRefused("Có sản phẩm đã chọn không còn chờ quyết định ở đây; không có gì được ghi. / "
                                  "A product chosen no longer waits for this decision; nothing was written.")
        proposals = proposals_of(session, instance_ids)
        items = []
        for instance_id in instance_ids:
            proposal = proposals.get(instance_id) or {}
            items.append({"instance_id": instance_id, "product_id": tasks[instance_id].product_id,
                          "stars": int(proposal.get("stars") or 0),
                          "outcome": proposal.get("outcome") or "recognised"})
        now = engine.clock()
        decision = record_decision(session, authority=authority, area_id=area_id, number=number,
                                   signed_on=signed_on, signer=signer, items=items, round_id=round_id,
                                   recorded_by=actor.user_id, recorded_at=now)
        # Leave the rounds before the diagram moves on: a 90+ product joins the ministry's round next.
        for item in items:
            session.execute(update(RoundEntry).where(RoundEntry.instance_id == item["instance_id"],
                                                     RoundEntry.left_at.is_(None))
                            .values(left_at=now, outcome=item["outcome"]))
        for item in items:
            try:
                engine.complete_task(tasks[item["instance_id"]].id,
                                     {"decision": decision, "outcome": item["outcome"], "stars": item["stars"]},
                                     actor, unit=session, from_session=True)
            except (UnknownTask, TaskNotReady) as err:  # decided by a concurrent decision: all or nothing
                raise DecisionRefused("Một sản phẩm đã chọn vừa được quyết định ở nơi khác; không có gì được ghi. "
                                      "/ A product was just decided elsewhere; nothing was written.") from err
        # Each new certificate's validity (reminders, re-evaluation, expiry) starts in this transaction.
        certificates.start_validity(engine, session, actor)
        return decision["id"]

    try:
        return engine.run(work)
    except IntegrityError as err:  # the same number recorded at the same moment by someone else
        raise DecisionRefused(f"Số quyết định {number} đã được dùng. / Decision number {number} is taken.") from err


# --- a decision's page --------------------------------------------------------------------

@dataclass
class DecisionLine:
    product_id: int
    product_name: str
    producer_name: str
    stars: int | None
    outcome: str
    certificate_id: int | None
    certificate_number: str | None


@dataclass
class DecisionPage:
    decision: Decision
    area_name: str
    round_label: str
    lines: list[DecisionLine] = field(default_factory=list)


def decision_page(session: Session, actor: Actor, decision_id: int) -> DecisionPage:
    """A decision with its products, stars and certificates; UnknownDecision
    when it does not exist or may not be seen."""
    found = session.get(Decision, decision_id)
    if found is None or not may_see_area(session, actor, found.authority, found.area_id):
        raise UnknownDecision(f"Không có quyết định số {decision_id}. / No decision {decision_id}.")
    rows = session.execute(
        select(DecisionItem.product_id, Product.name, Producer.name, DecisionItem.stars, DecisionItem.outcome,
               DecisionItem.certificate_id, Certificate.number)
        .join(Product, Product.id == DecisionItem.product_id).join(Producer, Producer.id == Product.producer_id)
        .outerjoin(Certificate, Certificate.id == DecisionItem.certificate_id)
        .where(DecisionItem.decision_id == found.id).order_by(DecisionItem.id)).all()
    item_round = session.get(EvaluationRound, found.round_id) if found.round_id else None
    return DecisionPage(found, session.get(Jurisdiction, found.area_id).name,
                        round_label(item_round.number, item_round.year, item_round.extra) if item_round else "",
                        [DecisionLine(*row) for row in rows])


def decisions_of(session: Session, actor: Actor, authority: str, area_id: int, limit: int = 100) -> list[Decision]:
    """The area's decisions, newest first."""
    if not may_see_area(session, actor, authority, area_id):
        raise NotAllowed("Không được xem quyết định ở địa bàn này. / Not your area.")
    return list(session.scalars(select(Decision).where(Decision.area_id == area_id, Decision.authority == authority)
                                .order_by(Decision.signed_on.desc(), Decision.id.desc()).limit(limit)))
