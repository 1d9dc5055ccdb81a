"""schedule_training: enrol the producer in the next training session of a
topic for its area, creating a session when none has a free seat."""
from __future__ import annotations

from datetime import date, timedelta

from marshmallow import Schema, fields, validate
from sqlalchemy import bindparam, select, update

from handlers.registry import HandlerContext, handler
from storage.models import TRAINING_TOPICS, Enrolment, Jurisdiction, Training

TITLES = {
    "business_plan": "Tập huấn xây dựng phương án sản xuất kinh doanh",
    "implementation": "Tập huấn triển khai phương án, hoàn thiện sản phẩm",
}
# A new session is announced at least this long ahead, on a Tuesday.
LEAD_DAYS = 14
SESSION_WEEKDAY = 1
DEFAULT_CAPACITY = 30


class ScheduleTrainingParams(Schema):
    topic = fields.String(required=True, validate=validate.OneOf(TRAINING_TOPICS))


@handler("schedule_training", ScheduleTrainingParams,
         "Ghi danh chủ thể vào lớp tập huấn kế tiếp còn chỗ của địa bàn / "
         "enrol the producer in the next training with a free seat",
         result={"training_id": "id", "enrolment_id": "id", "starts_on": "ISO date", "place": "text"})
def schedule_training(context: HandlerContext, topic: str) -> dict:
    session, instance = context.session, context.instance
    existing = session.scalar(_ENROLMENT_OF, {"instance_id": instance.id, "topic": topic})
    if existing is None:
        producer = instance.product.producer
        area = training_area(session, producer.commune_id)
        training = _take_seat(context, area, topic)
        existing = Enrolment(training_id=training.id, instance_id=instance.id,
                             producer_id=producer.id, topic=topic, enrolled_at=context.now)
        session.add(existing)
        session.flush()
    training = session.get(Training, existing.training_id)
    return {"training_id": training.id, "enrolment_id": existing.id, "title": training.title,
            "starts_on": training.starts_on.isoformat(), "place": training.place}


def training_area(session, commune_id: int) -> Jurisdiction:
    """Trainings are held by the commune's parent: the district before July
    2025, the province in the two-tier government."""
    commune = session.get(Jurisdiction, commune_id)
    return session.get(Jurisdiction, commune.parent_id) if commune.parent_id else commune


def _take_seat(context: HandlerContext, area: Jurisdiction, topic: str) -> Training:
    session = context.session
    earliest = context.today + timedelta(days=7)
    candidates = session.scalars(_SESSIONS_WITH_SEATS, {"area": area.id, "topic": topic, "earliest": earliest}).all()
    for training_id in candidates:
        # Conditional increment: two enrolments racing for the last seat
        # cannot both win it.
        taken = session.execute(_TAKE_SEAT, {"training_id": training_id}).rowcount
        if taken:
            return session.get(Training, training_id)
    training = Training(
        title=f"{TITLES[topic]} – {area.name}", topic=topic, level=area.level,
        jurisdiction_id=area.id, starts_on=_next_session_day(context.today),
        place=f"Hội trường UBND {area.name}", capacity=DEFAULT_CAPACITY, enrolled=1)
    session.add(training)
    session.flush()
    return training


# Built once (a step's statements cost more to build than to run).
_ENROLMENT_OF = select(Enrolment).where(Enrolment.instance_id == bindparam("instance_id"),
                                        Enrolment.topic == bindparam("topic"))
_SESSIONS_WITH_SEATS = (
    select(Training.id)
    .where(Training.jurisdiction_id == bindparam("area"), Training.topic == bindparam("topic"),
           Training.starts_on >= bindparam("earliest"), Training.enrolled < Training.capacity)
    .order_by(Training.starts_on, Training.id))
_TAKE_SEAT = (update(Training)
              .where(Training.id == bindparam("training_id"), Training.enrolled < Training.capacity)
              .values(enrolled=Training.enrolled + 1))


def _next_session_day(today: date) -> date:
    day = today + timedelta(days=LEAD_DAYS)
    return day + timedelta(days=(SESSION_WEEKDAY - day.weekday()) % 7)
