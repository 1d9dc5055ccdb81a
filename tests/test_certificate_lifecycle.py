"""A certificate's validity as BPMN (`ocop_certificate`, issue 16), on
SQLite and PostgreSQL with the fake clock and the worker's timers job:
reminders and the window notice on their dates, the re-evaluation window
(180 to 120 days before expiry), written opinions without a meeting, a
meeting when they diverge, the 45-day escalation, a new certificate that
replaces the old one, expiry without a dossier, and audit verify.
"""
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from audit import verification
from engine.calendar import LOCAL_ZONE
from engine.errors import FormInvalid, NotAllowed, UnknownTask
from programme.certificates import (
    ReevaluationWindow,
    local_today,
    product_certificate,
    reevaluation_window,
    start_validity,
)
from programme.councils import open_session, waiting_products
from storage.models import InboxTask, Notification
from storage.recognition_models import CERT_EXPIRED, CERT_REPLACED, CERT_VALID, Certificate
from tests.support.certificate_life import Life
from tests.support.certificate_life import actor_named as actor
from tests.support.councils import MEMBERS, province_council
from tests.support.inbox_world import PEPPER, add_officer, user_id

DOSSIER = {"materials": "Vùng nguyên liệu mở rộng 5 ha", "lab_tests": "Kiểm nghiệm định kỳ tháng 1/2026",
           "legal_papers": ["Giấy chứng nhận cơ sở đủ điều kiện ATTP, đến 01/01/2028"]}
COMPLETE = {"complete": True, "local_origin": True, "local_labour": True}


@pytest.fixture
def province(world):
    """Quảng Trị's council of five and an officer of its People's Committee."""
    council_id, _ids = province_council(world)
    add_officer(world, "ubnd.qt", "province_committee", "QT")
    return council_id


def certified(world, days_left: int, stars: int = 3) -> Life:
    """The pepper's certificate, valid `days_left` more days, and its validity instance."""
    today = local_today(world)
    life = Life(world, PEPPER, stars=stars, issued_on=today - timedelta(days=1095 - days_left),
                valid_until=today + timedelta(days=days_left))
    life.start_validity(actor(world, "ubnd.qt"))
    return life


def moment(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL_ZONE)


def test_the_window_dates_follow_the_rules():
    window = reevaluation_window(date(2027, 6, 30))
    assert window == ReevaluationWindow(date(2026, 12, 2), date(2027, 1, 1), date(2027, 3, 2), date(2027, 6, 30))
    assert [window.state(d) for d in (date(2026, 12, 31), date(2027, 1, 1), date(2027, 3, 2), date(2027, 3, 3),
                                      date(2027, 7, 1))] == ["before", "open", "open", "closed", "expired"]
    timers = window.timers()
    assert timers["expires_at"] == "2027-06-30T23:59:59+07:00"
    assert timers["window_opens"] == "2027-01-01T00:00:00+07:00"
    assert timers["window_closes"] == "2027-03-02T23:59:59+07:00"


def test_reminder_and_window_notice_on_their_dates_and_no_dossier_before(world, province):
    life = certified(world, days_left=240)
    window = reevaluation_window(life.certificate().valid_until)
    assert life.instance().process_id == "ocop_certificate" and life.forms() == []
    assert start_validity_again(world) == []  # one instance per certificate
    life.at(moment(window.reminder_on - timedelta(days=1)))
    assert life.notices() == []
    life.at(moment(window.reminder_on))
    assert life.notices() == [("certificate_reminder", "producer"), ("certificate_reminder", "commune_officer")]
    # Before 180 days: no dossier task, and the product page says when it opens.
    assert life.forms() == []
    with world.db.reading() as session:
        shown = product_certificate(session, actor(world, "htx.giomy"), life.product_id, local_today(world))
    assert shown.window_state == "before" and shown.window.opens == window.opens
    life.at(moment(window.opens, 1))
    assert life.notices()[-1] == ("reevaluation_window_open", "producer")
    assert life.forms() == ["reevaluation_dossier"]


def start_validity_again(world):
    return world.run(lambda session: start_validity(world, session, actor(world, "ubnd.qt")))


def test_no_dossier_after_120_days_and_expiry_at_valid_until(world, province):
    life = certified(world, days_left=170)
    life.fire()  # the reminder and the window are already due
    assert life.forms() == ["reevaluation_dossier"]
    window = reevaluation_window(life.certificate().valid_until)
    life.at(moment(window.closes, 23))
    assert life.forms() == ["reevaluation_dossier"]  # the last day still counts
    late = life.task("reevaluation_dossier")
    life.at(moment(window.closes + timedelta(days=1), 1))
    assert life.forms() == []  # closed: no task to file a dossier on
    with pytest.raises(UnknownTask):  # a page left open from before is refused, nothing written
        world.complete_task(late.id, DOSSIER, life.driver.actor_for(late))
    assert life.instance().status == "running" and life.certificate().status == CERT_VALID
    life.at(moment(window.valid_until, 23))
    assert life.certificate().status == CERT_VALID  # valid the whole last day
    life.at(moment(window.valid_until + timedelta(days=1), 0))
    certificate = life.certificate()
    assert certificate.status == CERT_EXPIRED and certificate.status_changed_on == window.valid_until + timedelta(days=1)
    instance = life.instance()
    assert (instance.status, instance.end_event) == ("completed", "end_expired")
    assert life.notices()[-2:] == [("certificate_expired", "producer"), ("certificate_expired", "commune_officer")]
    with world.db.reading() as session:  # nothing valid to list any more
        assert session.scalar(select(Certificate.id).where(Certificate.product_id == life.product_id,
                                                           Certificate.status == CERT_VALID)) is None


def filed(world) -> Life:
    life = certified(world, days_left=150)
    life.fire()
    life.do("reevaluation_dossier", DOSSIER)
    assert life.forms() == ["reevaluation_check"]
    return life


def test_written_opinions_that_agree_lead_to_a_new_certificate(world, province):
    life = filed(world)
    life.do("reevaluation_check", COMPLETE)
    sheets = [t for t in life.ready() if t.form_key == "council_sheet"]
    assert len(sheets) == len(MEMBERS)  # every member asked in writing, nobody convened
    assert {t.element_id for t in sheets} == {"task_opinion_reevaluation"}
    life.opinions(62)
    sign_off = life.task("council_sign_off")
    assert sign_off.assignee_id == user_id(world, "ct.hdqt")
    life.do("council_sign_off", {"confirmed": True})
    assert life.forms() == ["recognition_decision"]
    decision_task = life.task("recognition_decision")
    assert decision_task.role == "province_committee"
    life.decide(3, actor(world, "ubnd.qt"))
    old, instance = life.certificate(), life.instance()
    assert (instance.status, instance.end_event) == ("completed", "end_re_recognised")
    assert old.status == CERT_REPLACED
    with world.db.reading() as session:
        new = session.scalar(select(Certificate).where(Certificate.previous_id == old.id))
    assert (new.kind, new.status, new.stars, new.instance_id) == ("re_recognised", CERT_VALID, 3, life.instance_id)
    assert ("re_recognised", "producer") in life.notices()
    # The decision use case then starts the new certificate's own validity.
    started = start_validity_again(world)
    assert len(started) == 1
    with world.db.reading() as session:
        assert session.get(Certificate, new.id).lifecycle_instance_id == started[0]


def test_diverging_opinions_convene_the_council(world, province):
    life = filed(world)
    life.do("reevaluation_check", COMPLETE)
    life.opinions([58, 58, 58, 58, 85])
    assert life.forms() == ["council_attendance"]
    # The meeting is on the council's session page like the cycle's.
    secretary = actor(world, "hd.qt")
    with world.db.reading() as session:
        waiting = waiting_products(session, secretary, province)
    assert [w.instance_id for w in waiting] == [life.instance_id]
    present = [user_id(world, username) for username, *_ in MEMBERS]
    open_session(world, secretary, province, [waiting[0].task_id], present, local_today(world), "Hội trường Sở")
    life.opinions(62)
    assert life.forms() == ["council_sign_off"]
    life.do("council_sign_off", {"confirmed": True})
    assert life.forms() == ["recognition_decision"]


def test_a_returned_dossier_goes_back_to_the_producer(world, province):
    life = filed(world)
    life.do("reevaluation_check", {"complete": False, "reasons": "Thiếu phiếu kiểm nghiệm"})
    assert life.forms() == ["reevaluation_dossier"]
    assert ("dossier_returned", "producer") in life.notices()
    with pytest.raises(Exception) as refused:
        life.do("reevaluation_dossier", {"notes": "không có gì"})
    assert "cập nhật" in str(refused.value.errors)
    life.do("reevaluation_dossier", DOSSIER)
    assert life.forms() == ["reevaluation_check"]


def test_after_45_days_the_province_is_told_and_the_task_marked(world, province):
    life = filed(world)
    life.do("reevaluation_check", COMPLETE)
    life.at(world.clock.now + timedelta(days=44))
    assert ("task_overdue", "program_manager") not in life.notices()
    life.at(world.clock.now + timedelta(days=2))
    assert ("task_overdue", "program_manager") in life.notices()
    assert ("office_reevaluation_late", "province_office") in life.notices()  # Văn phòng Điều phối
    with world.db.reading() as session:
        flagged = session.scalars(select(InboxTask.escalated_at).where(
            InboxTask.instance_id == life.instance_id, InboxTask.element_id == "task_opinion_reevaluation")).all()
        message = session.scalar(select(Notification.message).where(Notification.kind == "task_overdue",
                                                                     Notification.instance_id == life.instance_id))
    assert flagged and all(flagged)
    assert "quá hạn" in message
    # The opinions still count afterwards.
    life.opinions(62)
    assert life.forms() == ["council_sign_off"]


def test_below_three_stars_the_certificate_runs_out(world, province):
    life = filed(world)
    life.do("reevaluation_check", COMPLETE)
    life.opinions(40)
    life.do("council_sign_off", {"confirmed": True})
    assert life.forms() == []
    assert ("reevaluation_failed", "producer") in life.notices()
    life.at(moment(life.certificate().valid_until + timedelta(days=1), 0))
    assert life.certificate().status == CERT_EXPIRED and life.instance().end_event == "end_expired"


def test_audit_verify_passes_on_a_validity_instance(world, province):
    life = filed(world)
    life.do("reevaluation_check", COMPLETE)
    life.opinions(62)
    life.do("council_sign_off", {"confirmed": True})
    life.decide(3, actor(world, "ubnd.qt"))
    report = verification.verify(world, [life.instance_id])
    assert report.ok, report


def test_a_five_star_certificate_is_decided_by_the_ministry(world, province):
    add_officer(world, "bo.nnmt", "ministry", "VN")
    life = certified(world, days_left=150, stars=5)
    life.fire()
    life.do("reevaluation_dossier", DOSSIER)
    life.do("reevaluation_check", COMPLETE)
    life.opinions(96)
    life.do("council_sign_off", {"confirmed": True})
    task = life.task("recognition_decision")
    assert task.role == "ministry" and task.element_id == "task_decision_reevaluation_central"


def test_the_wrong_people_are_refused_and_nothing_is_written(world, province):
    add_officer(world, "ubnd.lc", "province_committee", "LC")
    life = certified(world, days_left=150)
    life.fire()
    dossier = life.task("reevaluation_dossier")
    version = life.instance().version
    with pytest.raises(NotAllowed):  # the commune officer does not file the producer's dossier
        world.complete_task(dossier.id, DOSSIER, actor(world, "cb.qt-gl-gm"))
    life.do("reevaluation_dossier", DOSSIER)
    check = life.task("reevaluation_check")
    with pytest.raises(NotAllowed):  # nor does the producer check it
        world.complete_task(check.id, COMPLETE, actor(world, "htx.giomy"))
    with pytest.raises(FormInvalid):  # incomplete without a reason
        life.do("reevaluation_check", {"complete": False})
    life.do("reevaluation_check", COMPLETE)
    life.opinions(62)
    life.do("council_sign_off", {"confirmed": True})
    version = life.instance().version
    with pytest.raises(NotAllowed):  # another province's People's Committee
        life.decide(3, actor(world, "ubnd.lc"))
    assert life.instance().version == version and life.forms() == ["recognition_decision"]
    assert life.certificate().status == CERT_VALID
