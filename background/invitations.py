"""Calendar invitations (iCalendar, RFC 5545) for training enrolments: the
same file is attached to the e-mail that announces the enrolment (the
outbox) and downloaded from the portal (by whoever may read the product:
programme.product_status.readable_enrolment)."""
from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar, Event
from sqlalchemy.orm import Session

from background.mail import mail_domain, public_url
from storage.db import as_utc
from storage.models import Enrolment, Producer, Training

# Which notification announces the enrolment of which training topic: the
# diagrams schedule the training just before telling the producer.
TOPIC_ANNOUNCED_BY = {"idea_accepted": "business_plan", "plan_accepted": "implementation"}


def enrolment_uid(enrolment_id: int) -> str:
    """Stable per enrolment: downloading the file again, or receiving it by
    mail, updates the one event in the producer's calendar."""
    return f"ocop-enrolment-{enrolment_id}@{mail_domain()}"


def enrolment_ics(session: Session, enrolment: Enrolment) -> bytes:
    training = session.get(Training, enrolment.training_id)
    producer = session.get(Producer, enrolment.producer_id)
    calendar = Calendar()
    calendar.add("prodid", "-//ocop-flow//Tập huấn OCOP//VI")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", enrolment_uid(enrolment.id))
    event.add("dtstamp", as_utc(enrolment.enrolled_at))
    # Trainings are scheduled by day, without an hour: an all-day event.
    event.add("dtstart", training.starts_on)
    event.add("dtend", training.starts_on + timedelta(days=1))
    event.add("summary", f"Tập huấn OCOP: {training.title}")
    event.add("location", training.place)
    event.add("description", f"Chủ thể: {producer.name}. Lớp tập huấn của Chương trình OCOP "
                             f"(OCOP training session). {public_url('/portal/')}")
    event.add("transp", "TRANSPARENT")
    calendar.add_component(event)
    return calendar.to_ical()


def enrolment_filename(enrolment: Enrolment) -> str:
    return f"tap-huan-ocop-{enrolment.id}.ics"
