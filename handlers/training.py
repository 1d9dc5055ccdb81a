"""schedule_training: enrol the producer in the next training session of a
topic for its area, creating a session when none has a free seat."""
from __future__ import annotations

from datetime import date, timedelta

from marshmallow import Schema, fields, validate
from sqlalchemy import bindparam, func, insert, select, update

from handlers.context import HandlerContext
from handlers.registry import handler
from storage.models import TRAINING_TOPICS, Enrolment, Jurisdiction, Producer, Training

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
    connection, instance = context.connection, context.instance
    enrolment = connection.execute(_ENROLMENT_OF, {"instance_id": instance.id, "topic": topic}).first()
    if enrolment is None:
        producer_id = instance.product.producer_id
        training = _take_seat(context, producer_id, topic)
        enrolment_id = connection.execute(_INSERT_ENROLMENT, {
            "training_id": training["id"], "instance_id": instance.id, "producer_id": producer_id,
            "topic": topic, "enrolled_at": context.now}).inserted_primary_key[0]
    else:  # enrolled by an earlier run of this task (a retry)
        enrolment_id = enrolment.id
        training = connection.execute(_TRAINING, {"training_id": enrolment.training_id}).one()._asdict()
    return {"training_id": training["id"], "enrolment_id": enrolment_id, "title": training["title"],
            "starts_on": training["starts_on"].isoformat(), "place": training["place"]}


def _take_seat(context: HandlerContext, producer_id: int, topic: str) -> dict:
    """A seat in the next session of the topic with one free, held by the
    producer's training area, or in a new session. Returns the session
    (id, title, starts_on, place)."""
    connection = context.connection
    earliest = context.today + timedelta(days=7)
    candidates = connection.execute(_SESSIONS_WITH_SEATS, {"producer_id": producer_id, "topic": topic,
                                                           "earliest": earliest}).all()
    for candidate in candidates:
        # Conditional increment: two enrolments racing for the last seat
        # cannot both win it.
        if connection.execute(_TAKE_SEAT, {"training_id": candidate.id}).rowcount:
            return candidate._asdict()
    area = connection.execute(_TRAINING_AREA, {"producer_id": producer_id}).one()
    training = {"title": f"{TITLES[topic]} – {area.name}", "starts_on": _next_session_day(context.today),
                "place": f"Hội trường UBND {area.name}"}
    training["id"] = connection.execute(_INSERT_TRAINING, {
        **training, "topic": topic, "level": area.level, "jurisdiction_id": area.id,
        "capacity": DEFAULT_CAPACITY, "enrolled": 1}).inserted_primary_key[0]
    return training


# Built once, and plain Core: an engine call's statements cost more to build than
# to run, and nothing here needs ORM objects.
_trainings, _enrolments = Training.__table__, Enrolment.__table__
_commune, _parent = Jurisdiction.__table__.alias("commune"), Jurisdiction.__table__.alias("parent")
_ENROLMENT_OF = select(_enrolments.c.id, _enrolments.c.training_id).where(
    _enrolments.c.instance_id == bindparam("instance_id"), _enrolments.c.topic == bindparam("topic"))
# Trainings are held by the commune's parent: the district before July
# 2025, the province in the two-tier government (the commune itself when it
# has no parent).
_TRAINING_AREA = (
    select(func.coalesce(_parent.c.id, _commune.c.id).label("id"),
           func.coalesce(_parent.c.name, _commune.c.name).label("name"),
           func.coalesce(_parent.c.level, _commune.c.level).label("level"))
    .select_from(Producer.__table__)
    .join(_commune, _commune.c.id == Producer.__table__.c.commune_id)
    .outerjoin(_parent, _parent.c.id == _commune.c.parent_id)
    .where(Producer.__table__.c.id == bindparam("producer_id")))
# Sessions of the producer's training area with a free seat, soonest first.
_SESSIONS_WITH_SEATS = (
    select(_trainings.c.id, _trainings.c.title, _trainings.c.starts_on, _trainings.c.place)
    .where(_trainings.c.jurisdiction_id == _TRAINING_AREA.with_only_columns(
               func.coalesce(_parent.c.id, _commune.c.id)).scalar_subquery(),
           _trainings.c.topic == bindparam("topic"),
           _trainings.c.starts_on >= bindparam("earliest"), _trainings.c.enrolled < _trainings.c.capacity)
    .order_by(_trainings.c.starts_on, _trainings.c.id))
_TAKE_SEAT = (update(_trainings)
              .where(_trainings.c.id == bindparam("training_id"), _trainings.c.enrolled < _trainings.c.capacity)
              .values(enrolled=_trainings.c.enrolled + 1))
_TRAINING = select(_trainings.c.id, _trainings.c.title, _trainings.c.starts_on, _trainings.c.place).where(
    _trainings.c.id == bindparam("training_id"))
_INSERT_TRAINING = insert(_trainings)
_INSERT_ENROLMENT = insert(_enrolments)


def _next_session_day(today: date) -> date:
    day = today + timedelta(days=LEAD_DAYS)
    return day + timedelta(days=(SESSION_WEEKDAY - day.weekday()) % 7)
