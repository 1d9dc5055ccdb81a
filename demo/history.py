"""The demo's past: products of Quảng Trị recognised in earlier rounds, so a
newcomer finds certificates in every state of their life (issue 16).

Each one walks the real cycle on a clock set back to its year (outreach,
idea, plan, dossier, the district and province councils in their rounds),
gets its numbered decision from the People's Committee through the
decision use case, and its validity instance starts there. Back on today's
clock, the validity timers that fell due in the meantime fire, as the
worker would: a certificate expired, one in its re-evaluation window with
the producer's dossier waiting. Then the coordination office revokes one,
opens a revocation case for another, and starts an inspection.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from engine.access import load_actor
from engine.bpmn_engine import BpmnEngine
from engine.clock import MovableClock
from engine.driver import AUTHORITY_OF_ROLE, Driver
from programme import inspections, recognition, revocations
from storage.models import InboxTask, Jurisdiction, Producer, Product, TimerDue, User, utcnow
from storage.recognition_models import Certificate, RoundEntry

VIETNAM = timezone(timedelta(hours=7))


@dataclass(frozen=True)
class PastProduct:
    producer: str          # the producer's name (a demo producer, made here)
    kind: str              # Producer.kind
    commune: str           # commune code
    owner: tuple[str, str]  # (username, full name) of the producer's account
    product: str
    group: str             # criteria set
    quality: float         # 70+ goes on to the province council (4 stars below 90)
    registered: date       # the day its idea was registered
    decided: date          # the People's Committee's decision


# Dates chosen so that, on 2026-12-07, one certificate has expired, one is
# inside its re-evaluation window (180 to 120 days before expiry), and the
# others are valid; the run works on any later day too (states shift).
PAST = (
    PastProduct("HTX Dịch vụ nông nghiệp Gio Châu", "cooperative", "QT-GL-GC", ("htx.giochau", "Nguyễn Thị Hạnh"),
                "Nước mắm Gio Châu", "S09", 76.0, date(2023, 2, 6), date(2023, 6, 20)),
    PastProduct("Công ty TNHH Chè vằng Gio Quang", "enterprise", "QT-GL-GQ", ("cty.chevang", "Lê Quang Vinh"),
                "Chè vằng Gio Quang", "S12", 74.0, date(2023, 12, 4), date(2024, 4, 25)),
    PastProduct("Hộ kinh doanh Trần Văn Sơn", "household", "QT-GL-GS", ("hkd.tranvanson", "Trần Văn Sơn"),
                "Bánh ướt Gio Sơn", "S06", 72.0, date(2024, 1, 8), date(2024, 6, 25)),
    PastProduct("HTX Nông nghiệp Trung Giang", "cooperative", "QT-GL-TG", ("htx.trunggiang", "Phạm Văn Lực"),
                "Mè đen Trung Giang", "S03", 78.0, date(2025, 1, 6), date(2025, 6, 24)),
    PastProduct("Tổ hợp tác Dầu lạc Gio Mỹ", "cooperative_group", "QT-GL-GM", ("tht.daulac", "Võ Thị Na"),
                "Dầu lạc Gio Mỹ", "S10", 75.0, date(2025, 7, 7), date(2025, 12, 22)),
)
# What happens to each after recognition (product -> kind of event).
REVOKED = "Bánh ướt Gio Sơn"        # production stopped, confirmed by the commune: revoked
REVOCATION_OPEN = "Dầu lạc Gio Mỹ"   # misuse of the OCOP mark found: waits for the committee
INSPECTED = "Mè đen Trung Giang"      # the office's inspection waits


def seed_history(engine: BpmnEngine, driver: Driver, password_hash: str | None, run_outreach) -> None:
    """Walk every PAST product on a clock set back to its year, then come
    back to today and let what fell due happen."""
    real_clock = engine.clock
    try:
        for past in PAST:
            engine.clock = MovableClock(datetime.combine(past.registered, time(9), VIETNAM).astimezone(timezone.utc))
            _recognise(engine, driver, past, password_hash, run_outreach)
    finally:
        engine.clock = real_clock
    _fire_due_timers(engine)
    _after_recognition(engine)


def _recognise(engine: BpmnEngine, driver: Driver, past: PastProduct, password_hash, run_outreach) -> None:
    product_id, owner = _producer_and_product(engine, past, password_hash)
    run_outreach(engine, driver)
    started = engine.start_product(product_id, owner)
    driver.run_to_end(started.instance_id, quality=past.quality, stop_at_form="recognition_decision")
    task = next(t for t in engine.ready_tasks(started.instance_id) if t.form_key == "recognition_decision")
    # The engine's clock is in UTC: the audit chain hashes its times as stored.
    engine.clock.now = max(engine.clock.now,
                           datetime.combine(past.decided, time(15), VIETNAM).astimezone(timezone.utc))
    # The People's Committee whose lane the product waits in: the province's
    # (4 stars), or the district's when its council gave 3 stars (148 era).
    with engine.db.transaction() as session:
        area = session.get(Jurisdiction, task.jurisdiction_id)
        signer = load_actor(session, _user_id(session, f"ubnd.{area.code.lower()}"))
        round_id = session.scalar(select(RoundEntry.round_id).where(
            RoundEntry.instance_id == started.instance_id, RoundEntry.left_at.is_(None)).limit(1))
    number = f"{past.decided.timetuple().tm_yday}/QĐ-UBND"
    recognition.issue_decision(engine, signer, area.id, AUTHORITY_OF_ROLE[task.role], number, past.decided,
                               f"Hoàng Nam, Phó Chủ tịch Ủy ban nhân dân {area.name[:1].lower()}{area.name[1:]}",
                               [started.instance_id], round_id)
    driver.run_to_end(started.instance_id, quality=past.quality)


def _producer_and_product(engine: BpmnEngine, past: PastProduct, password_hash) -> tuple[int, object]:
    with engine.db.transaction() as session:
        username, full_name = past.owner
        user = User(username=username, full_name=full_name, password_hash=password_hash)
        session.add(user)
        session.flush()
        commune_id = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == past.commune))
        producer = Producer(name=past.producer, kind=past.kind, commune_id=commune_id, owner_user_id=user.id,
                            created_at=utcnow())
        session.add(producer)
        session.flush()
        product = Product(producer_id=producer.id, name=past.product, group_code=past.group)
        session.add(product)
        session.flush()
        return product.id, load_actor(session, user.id)


def _fire_due_timers(engine: BpmnEngine) -> None:
    """What the worker's timer job does on its first pass today: every
    timer that fell due since (reminders, windows, expiries), instance by
    instance, until none is due."""
    while True:
        with engine.db.reading() as session:
            due = session.scalars(select(TimerDue.instance_id).distinct()
                                  .where(TimerDue.due_at <= engine.clock())).all()
        fired = [instance_id for instance_id in due if engine.fire_due_timers(instance_id) is not None]
        if not fired:
            return
    raise RuntimeError("timers kept falling due: a diagram's timer loops")


def _after_recognition(engine: BpmnEngine) -> None:
    today = engine.clock().astimezone(VIETNAM).date()
    with engine.db.transaction() as session:
        office = load_actor(session, _user_id(session, "vpdp.qt"))
        committee = load_actor(session, _user_id(session, "ubnd.qt"))
        certificates = {name: certificate_id for name, certificate_id in session.execute(
            select(Product.name, Certificate.id).join(Certificate, Certificate.product_id == Product.id)).all()}
    case = revocations.open_revocation(
        engine, office, certificates[REVOKED], "production_stopped", "Ủy ban nhân dân xã Gio Sơn",
        today - timedelta(days=6), "Hộ kinh doanh đã ngừng sản xuất sản phẩm từ tháng 9, xã đã xác nhận bằng văn bản.")
    with engine.db.reading() as session:
        task_id = session.scalar(select(InboxTask.id).where(InboxTask.instance_id == case.instance_id))
    revocations.decide(engine, committee, task_id, True, f"{today.timetuple().tm_yday}/QĐ-UBND", today,
                       "Hoàng Nam, Phó Chủ tịch Ủy ban nhân dân tỉnh", "")
    revocations.open_revocation(
        engine, office, certificates[REVOCATION_OPEN], "mark_misused", "Sở Công Thương tỉnh Quảng Trị",
        today - timedelta(days=3), "Nhãn sản phẩm ghi 4 sao OCOP trong khi giấy chứng nhận là 3 sao.")
    inspections.start_inspection(engine, office, certificates[INSPECTED],
                                 "Kiểm tra định kỳ năm: duy trì tiêu chí và sử dụng nhãn OCOP.")


def _user_id(session, username: str) -> int:
    return session.scalar(select(User.id).where(User.username == username))


