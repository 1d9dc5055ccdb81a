"""Training invitations: a valid iCalendar file per enrolment, linked from
the producer's training list, the same UID every time."""
from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar
from sqlalchemy import select

from storage.models import Enrolment, Training
from testkit.cycle import Cycle
from testkit.web_login import login

PRODUCT = "Hồ tiêu Gio Linh"


def enrolled(world) -> Cycle:
    cycle = Cycle(world, PRODUCT).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    cycle.do("review_idea")  # accepted: enrolled in the business-plan training
    return cycle


def test_the_portal_links_a_valid_invitation_per_enrolment(world, client, monkeypatch):
    monkeypatch.delenv("OCOP_MAIL_FROM", raising=False)  # the UID's domain comes from the sender
    cycle = enrolled(world)
    with world.db.transaction() as session:
        enrolment = session.scalar(select(Enrolment).where(Enrolment.instance_id == cycle.instance_id))
        training = session.get(Training, enrolment.training_id)
    login(client, "htx.giomy")
    page = client.get(f"/portal/products/{cycle.product_id}").get_data(as_text=True)
    link = f"/portal/enrolments/{enrolment.id}.ics"
    assert link in page
    response = client.get(link)
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    assert "attachment" in response.headers["Content-Disposition"]
    calendar = Calendar.from_ical(response.data)
    assert str(calendar["VERSION"]) == "2.0" and str(calendar["PRODID"])
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == training.starts_on  # an all-day event on the training's date
    assert event.decoded("DTEND") == training.starts_on + timedelta(days=1)
    assert str(event["LOCATION"]) == training.place
    assert str(event["SUMMARY"]).startswith("Tập huấn OCOP: ") and training.title in str(event["SUMMARY"])
    assert str(event["UID"]) == f"ocop-enrolment-{enrolment.id}@localhost"
    assert event.decoded("DTSTAMP")
    again = Calendar.from_ical(client.get(link).data).walk("VEVENT")[0]
    assert str(again["UID"]) == str(event["UID"])


def test_another_producer_cannot_download_it(world, app):
    cycle = enrolled(world)
    with world.db.transaction() as session:
        enrolment_id = session.scalar(select(Enrolment.id).where(Enrolment.instance_id == cycle.instance_id))
    other = app.test_client()
    login(other, "cty.tramcamlo")
    assert other.get(f"/portal/enrolments/{enrolment_id}.ics").status_code == 404
    assert other.get("/portal/enrolments/999999.ics").status_code == 404
