"""Inspection after recognition (26/2026 Art. 9) as the `ocop_inspection`
process: ad hoc and periodic (a year's plan), a report that finds the
criteria maintained, and one that proposes a revocation, decided as in
Art. 8 within 15 days (SQLite and PostgreSQL, fake clock)."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from audit import verification
from background.timers import fire_due_timers
from engine.errors import FormInvalid, NotAllowed
from programme import inspections, revocations
from programme.revocations import RevocationRefused
from storage.models import InboxTask, Jurisdiction, Notification, ProcessInstance, Product
from storage.recognition_models import Certificate, Decision
from tests.support.revocation_people import certificate_of, people_of, person

SEED = "Hồ tiêu Gio Linh"
QT_PRODUCTS = ("Hồ tiêu Gio Linh", "Gạo hữu cơ Gio Mỹ", "Tinh dầu tràm Cam Lộ", "Mật ong rừng Gio Sơn")
MAINTAINED = {"inspected_on": "2026-03-02", "criteria_maintained": True, "mark_used_correctly": True,
              "findings": "", "propose_revocation": False}
PROPOSED = {"inspected_on": "2026-03-02", "criteria_maintained": False, "mark_used_correctly": True,
            "findings": "Không duy trì kiểm nghiệm định kỳ, bao bì thay đổi", "propose_revocation": True,
            "ground": "criteria_not_maintained"}


@pytest.fixture
def people(world):
    return people_of(world)


def inspection_task(world, instance_id):
    tasks = world.ready_tasks(instance_id)
    assert [t.form_key for t in tasks] == ["inspection_report"]
    return tasks[0]


def test_an_ad_hoc_inspection_finds_the_criteria_maintained(world, people):
    certificate_id = certificate_of(world, SEED)
    started = inspections.start_inspection(world, people["office"], certificate_id, "Phản ánh của người tiêu dùng")
    task = inspection_task(world, started.instance_id)
    assert task.role == "province_office"
    with pytest.raises(RevocationRefused, match="đang được kiểm tra"):
        inspections.start_inspection(world, people["office"], certificate_id, "Lần nữa trong lúc đang kiểm tra")
    outcome = world.complete_task(task.id, MAINTAINED, people["office"])
    assert outcome.end_event == "end_inspected"
    with world.db.transaction() as session:
        assert session.get(Certificate, certificate_id).status == "valid"
        told = session.scalars(select(Notification).where(Notification.instance_id == started.instance_id)).all()
        assert [(n.recipient_role, n.kind) for n in told] == [("producer", "inspection_passed")]
    assert verification.verify_instance(world, started.instance_id).ok


def test_a_report_is_checked(world, people):
    task = inspection_task(world, inspections.start_inspection(
        world, people["office"], certificate_of(world, SEED), "Phản ánh của người tiêu dùng").instance_id)
    for bad in ({**MAINTAINED, "criteria_maintained": False},           # findings required on a No
                {**MAINTAINED, "propose_revocation": True, "findings": "Sai nhãn OCOP trên bao bì"},  # no ground
                {**PROPOSED, "ground": "false_information"},          # not a ground an inspection proposes
                {**MAINTAINED, "ground": "mark_misused"}):            # a ground without a proposal
        with pytest.raises(FormInvalid):
            world.complete_task(task.id, bad, people["office"])
    assert inspection_task(world, task.instance_id).id == task.id


def test_an_inspection_proposing_revocation_leads_to_a_decision(world, people, clock):
    certificate_id = certificate_of(world, SEED)
    started = inspections.start_inspection(world, people["office"], certificate_id, "Kiểm tra đột xuất")
    world.complete_task(inspection_task(world, started.instance_id).id, PROPOSED, people["office"])
    decision = [t for t in world.ready_tasks(started.instance_id) if t.form_key == "revocation_decision"]
    assert [(t.element_id, t.role) for t in decision] == [("task_revocation_province_inspection",
                                                           "province_committee")]
    with world.db.transaction() as session:
        [case] = revocations.open_cases(session, people["committee"], "ocop_inspection")
        assert case.deadline.date() == date(2026, 3, 17)  # 15 days from the report
    clock.advance(days=15, minutes=1)
    assert fire_due_timers(world) == 1
    with world.db.transaction() as session:
        assert session.get(InboxTask, decision[0].id).escalated_at is not None
    outcome = revocations.decide(world, people["committee"], decision[0].id, True, "31/QĐ-UBND",
                                 date(2026, 3, 17), "Chủ tịch", "Không duy trì tiêu chí")
    assert outcome.end_event == "end_revoked_inspection"
    with world.db.transaction() as session:
        certificate = session.get(Certificate, certificate_id)
        assert (certificate.status, certificate.revocation_ground) == ("revoked", "criteria_not_maintained")
        assert session.get(Decision, certificate.revocation_decision_id).number == "31/QĐ-UBND"
    assert verification.verify_instance(world, started.instance_id).ok


def test_a_years_plan_starts_one_inspection_per_chosen_certificate(world, people):
    ids = [certificate_of(world, name) for name in QT_PRODUCTS]
    sapa = certificate_of(world, "Rượu mận Sa Pa")
    with world.db.transaction() as session:
        qt = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT"))
    started = inspections.plan_inspections(world, people["office"], qt, 2026, share=0.5)
    assert len(started) == 2
    # The rest of the year's share: the two not yet planned; then nothing is left.
    assert len(inspections.plan_inspections(world, people["office"], qt, 2026, share=1.0)) == 2
    with pytest.raises(RevocationRefused, match="Không còn"):
        inspections.plan_inspections(world, people["office"], qt, 2026, share=1.0)
    with world.db.transaction() as session:
        planned = session.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.process_id == "ocop_inspection"))
        assert planned == 4
    for bad in ({"certificate_ids": [sapa]}, {"certificate_ids": [ids[0]]}, {"share": 0}, {"share": 1.5},
                {}, {"certificate_ids": [ids[0]], "share": 0.5}):
        with pytest.raises(RevocationRefused):
            inspections.plan_inspections(world, people["office"], qt, 2026, **bad)
    with pytest.raises(RevocationRefused):
        inspections.plan_inspections(world, people["office"], qt, 2031, share=0.5)
    # Named certificates, by the province's program manager, next year
    # (once this year's inspections of them are done).
    for instance_id in started:
        world.complete_task(inspection_task(world, instance_id).id, MAINTAINED, people["office"])
    with world.db.transaction() as session:
        done = [c.id for c in session.scalars(select(Certificate).where(Certificate.id.in_(ids)))
                if c.product_id in set(session.scalars(select(ProcessInstance.product_id).where(
                    ProcessInstance.id.in_(started))))]
    manager = person(world, "qlct2.qt", "program_manager", "QT")
    assert len(inspections.plan_inspections(world, manager, qt, 2027, certificate_ids=done)) == 2


def test_only_those_who_look_after_the_certificate_inspect_it(world, people):
    certificate_id = certificate_of(world, SEED)
    five = certificate_of(world, "Gạo hữu cơ Gio Mỹ", stars=5)
    lao_cai_office = person(world, "vp.lc", "province_office", "LC")
    with world.db.transaction() as session:
        qt = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT"))
        before = session.scalar(select(func.count()).select_from(ProcessInstance))
    for who in (lao_cai_office, people["committee"], people["ministry"]):
        with pytest.raises(RevocationRefused):
            inspections.start_inspection(world, who, certificate_id, "Phản ánh của người tiêu dùng")
    with pytest.raises(NotAllowed):  # not the province's office: refused before anything is looked at
        inspections.plan_inspections(world, lao_cai_office, qt, 2026, certificate_ids=[certificate_id])
    with world.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ProcessInstance)) == before
        assert session.scalar(select(Product.id).where(Product.name == SEED))
    # The ministry inspects 5-star certificates.
    assert inspections.start_inspection(world, people["ministry"], five, "Kiểm tra sản phẩm 5 sao").instance_id
