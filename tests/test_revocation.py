"""Revocation of a certificate (26/2026 Art. 8) as the `ocop_revocation`
process: opened on a conclusion, decided by the province's People's
Committee (3-4 stars) or the ministry (5 stars) within 15 days, the
certificate revoked, its validity process ended, the producer, the commune
and the office told; wrong authorities refused with nothing written; the
15-day escalation; a kept certificate; two deciders at once; audit
verification (SQLite and PostgreSQL, fake clock)."""
from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from audit import verification
from background.timers import fire_due_timers
from engine.errors import ConcurrencyConflict, NotAllowed
from engine.process_ids import INSPECTION_PROCESS, REVOCATION_PROCESS
from programme import revocations
from programme.catalogue import promoted_products
from programme.revocations import RevocationRefused
from storage.models import InboxTask, Notification, ProcessInstance
from storage.recognition_models import Certificate, Decision, DecisionItem
from testkit.cycle import Cycle
from tests.support.certificates import list_certificate
from tests.support.revocation_people import certificate_of, people_of, person

SEED = "Hồ tiêu Gio Linh"        # Gio Mỹ, Quảng Trị
SAPA = "Rượu mận Sa Pa"          # Lào Cai


def validity_stand_in(engine, certificate_id, actor):
    """A running lifecycle instance as the certificate's validity process
    (helper B1 ships `ocop_certificate`; any running instance shows that
    the decision ends it)."""
    with engine.db.transaction() as session:
        certificate = session.get(Certificate, certificate_id)
        product_id, number, stars = certificate.product_id, certificate.number, certificate.stars
    outcome = engine.start_lifecycle(INSPECTION_PROCESS, product_id, {
        "certificate_id": certificate_id, "certificate_number": number, "stars": stars,
        "inspection_kind": "ad_hoc", "reason": "stand-in"}, actor)
    with engine.db.transaction() as session:
        session.get(Certificate, certificate_id).lifecycle_instance_id = outcome.instance_id
    return outcome.instance_id


@pytest.fixture
def people(world):
    return people_of(world)


def open_on(world, people, certificate_id, ground="law_violation", concluded_on=date(2026, 3, 1)):
    return revocations.open_revocation(world, people["office"], certificate_id, ground,
                                       "Chi cục Quản lý chất lượng nông lâm thủy sản", concluded_on,
                                       "Vi phạm an toàn thực phẩm theo kết luận thanh tra")


def decision_task(world, instance_id):
    tasks = [t for t in world.ready_tasks(instance_id) if t.form_key == "revocation_decision"]
    assert len(tasks) == 1, [t.form_key for t in world.ready_tasks(instance_id)]
    return tasks[0]


def counts(world):
    with world.db.transaction() as session:
        return (session.scalar(select(func.count()).select_from(Decision)),
                session.scalar(select(func.count()).select_from(DecisionItem)),
                session.scalar(select(func.count()).select_from(Notification)))


def test_a_three_star_certificate_is_revoked_by_the_province_committee(world, people):
    certificate_id = certificate_of(world, SEED)
    validity = validity_stand_in(world, certificate_id, people["office"])
    with world.db.transaction() as session:
        certificate = session.get(Certificate, certificate_id)
        list_certificate(session, certificate)
    opened = open_on(world, people, certificate_id)
    task = decision_task(world, opened.instance_id)
    assert task.role == "province_committee" and task.element_id == "task_revocation_province"
    with world.db.transaction() as session:
        cases = revocations.open_cases(session, people["office"], REVOCATION_PROCESS)
        assert [case.instance_id for case in cases] == [opened.instance_id]
        assert cases[0].deadline is not None and cases[0].deadline.date() == date(2026, 3, 16)
        assert revocations.open_cases(session, people["committee_lc"], REVOCATION_PROCESS) == []

    outcome = revocations.decide(world, people["committee"], task.id, True, "123/QĐ-UBND", date(2026, 3, 2),
                                 "Chủ tịch Võ Văn Hưng", "Vi phạm an toàn thực phẩm")
    assert outcome.status == "completed" and outcome.end_event == "end_revoked"
    with world.db.transaction() as session:
        certificate = session.get(Certificate, certificate_id)
        assert certificate.status == "revoked" and certificate.status_changed_on == date(2026, 3, 2)
        assert certificate.revocation_ground == "law_violation"
        decision = session.get(Decision, certificate.revocation_decision_id)
        assert (decision.kind, decision.authority, decision.number) == ("revocation", "province", "123/QĐ-UBND")
        assert [(i.outcome, i.certificate_id) for i in decision.items] == [("revoked", certificate_id)]
        assert session.get(ProcessInstance, validity).status == "cancelled"
        notices = session.scalars(select(Notification).where(Notification.instance_id == opened.instance_id)).all()
        told = sorted(n.recipient_role for n in notices if n.kind == "certificate_revoked")
        assert told == ["commune_officer", "producer", "province_office"]
        assert all("123/QĐ-UBND" in n.reasons for n in notices if n.kind == "certificate_revoked")
        assert revocations.open_cases(session, people["office"], REVOCATION_PROCESS) == []
    assert verification.verify_instance(world, opened.instance_id).ok
    assert verification.verify_instance(world, validity).ok  # its cancellation is in its history


def test_a_revoked_certificate_leaves_the_catalogue(world, people):
    certificate_id = certificate_of(world, SEED)
    with world.db.transaction() as session:
        certificate = session.get(Certificate, certificate_id)
        list_certificate(session, certificate)
    with world.db.transaction() as session:
        assert SEED in [row.product_name for row in promoted_products(session, date(2026, 3, 2))]
    task = decision_task(world, open_on(world, people, certificate_id).instance_id)
    revocations.decide(world, people["committee"], task.id, True, "9/QĐ-UBND", date(2026, 3, 2), "Chủ tịch", "")
    with world.db.transaction() as session:
        assert SEED not in [row.product_name for row in promoted_products(session, date(2026, 3, 2))]


def test_a_five_star_certificate_is_revoked_by_the_ministry(world, people):
    certificate_id = certificate_of(world, SEED, stars=5)
    opened = open_on(world, people, certificate_id, ground="mark_misused")
    task = decision_task(world, opened.instance_id)
    assert task.role == "ministry" and task.element_id == "task_revocation_ministry"
    with pytest.raises(RevocationRefused, match="Bộ Nông nghiệp và Môi trường"):
        revocations.decide(world, people["committee"], task.id, True, "1/QĐ-UBND", date(2026, 3, 2), "A", "")
    outcome = revocations.decide(world, people["ministry"], task.id, True, "45/QĐ-BNNMT", date(2026, 3, 2),
                                 "Bộ trưởng", "Sử dụng sai nhãn OCOP")
    assert outcome.end_event == "end_revoked"
    with world.db.transaction() as session:
        certificate = session.get(Certificate, certificate_id)
        assert certificate.status == "revoked"
        assert session.get(Decision, certificate.revocation_decision_id).authority == "ministry"


def test_wrong_authorities_are_refused_and_nothing_is_written(world, people):
    three = certificate_of(world, SEED)
    task = decision_task(world, open_on(world, people, three).instance_id)
    member = person(world, "uv.hd.qt", "province_council", "QT")
    before = counts(world)
    for who, words in ((people["ministry"], "Ủy ban nhân dân tỉnh"), (people["committee_lc"], "Ủy ban nhân dân tỉnh"),
                       (member, "Ủy ban nhân dân tỉnh"), (people["office"], "Ủy ban nhân dân tỉnh")):
        with pytest.raises(RevocationRefused, match=words):
            revocations.decide(world, who, task.id, True, "77/QĐ-UBND", date(2026, 3, 2), "Chủ tịch", "")
    # Nor through the task form (the decision page is the only way in).
    with pytest.raises(NotAllowed):
        world.complete_task(task.id, {"revoke": False, "decision": None, "reason": "giữ lại"}, people["committee"])
    assert counts(world) == before
    with world.db.transaction() as session:
        assert session.get(Certificate, three).status == "valid"
    # Opening one: only the province's office or program manager (the ministry for 5 stars).
    sapa = certificate_of(world, SAPA)
    for who in (people["office"], people["committee"], people["ministry"], member):
        with pytest.raises(RevocationRefused):
            open_on(world, {"office": who}, sapa)
    with pytest.raises(RevocationRefused, match="đang được xem xét"):
        open_on(world, people, three)
    with pytest.raises(RevocationRefused):
        open_on(world, people, three, ground="not_a_ground")


def test_malformed_decisions_are_refused(world, people):
    task = decision_task(world, open_on(world, people, certificate_of(world, SEED)).instance_id)
    before = counts(world)
    for number, signed_on, signer in (("", date(2026, 3, 2), "A"), ("1/QĐ", None, "A"),
                                      ("1/QĐ", date(2027, 1, 1), "A"), ("1/QĐ", date(2026, 3, 2), ""),
                                      ("1/QĐ\u202e", date(2026, 3, 2), "A")):
        with pytest.raises(RevocationRefused):
            revocations.decide(world, people["committee"], task.id, True, number, signed_on, signer, "")
    with pytest.raises(RevocationRefused, match="Lý do"):
        revocations.decide(world, people["committee"], task.id, False, "", None, "", "")
    assert counts(world) == before


def test_the_fifteen_days_are_escalated_and_the_task_stays(world, people, clock):
    task = decision_task(world, open_on(world, people, certificate_of(world, SEED),
                                        concluded_on=date(2026, 3, 1)).instance_id)
    clock.now = clock.now.replace(month=3, day=16, hour=16)  # 23:00 on the 16th in Hà Nội: not yet
    assert fire_due_timers(world) == 0
    clock.advance(hours=1)
    assert fire_due_timers(world) == 1
    with world.db.transaction() as session:
        row = session.get(InboxTask, task.id)
        assert row is not None and row.escalated_at is not None
        kinds = sorted((n.recipient_role, n.kind) for n in session.scalars(
            select(Notification).where(Notification.instance_id == task.instance_id)))
        assert kinds == [("program_manager", "task_overdue"), ("province_office", "revocation_overdue")]
    outcome = revocations.decide(world, people["committee"], task.id, False, "", None, "",
                                 "Cơ sở đã khắc phục, kết luận thanh tra được rút lại")
    assert outcome.end_event == "end_kept"


def test_a_kept_certificate_stays_valid(world, people):
    certificate_id = certificate_of(world, SEED)
    opened = open_on(world, people, certificate_id)
    task = decision_task(world, opened.instance_id)
    before = counts(world)
    outcome = revocations.decide(world, people["committee"], task.id, False, "", None, "",
                                 "Không đủ căn cứ thu hồi")
    assert outcome.end_event == "end_kept"
    with world.db.transaction() as session:
        assert session.get(Certificate, certificate_id).status == "valid"
        assert session.scalar(select(func.count()).select_from(Decision)) == before[0]
        kept = session.scalars(select(Notification).where(Notification.instance_id == opened.instance_id,
                                                          Notification.kind == "certificate_kept")).all()
        assert [(n.recipient_role, n.reasons) for n in kept] == [("province_office", "Không đủ căn cứ thu hồi")]


def test_two_deciders_at_once_one_wins(world, people):
    certificate_id = certificate_of(world, SEED)
    task = decision_task(world, open_on(world, people, certificate_id).instance_id)
    second = person(world, "ubnd2.qt", "province_committee", "QT")
    results, barrier = [], threading.Barrier(2)

    def decide(who, number):
        barrier.wait()
        try:
            results.append(revocations.decide(world, who, task.id, True, number, date(2026, 3, 2), "Chủ tịch", ""))
        except (RevocationRefused, ConcurrencyConflict) as err:
            results.append(err)
        except Exception as err:  # noqa: BLE001 - anything else is a failure the assertions show
            results.append(repr(err))

    threads = [threading.Thread(target=decide, args=(who, number))
               for who, number in ((people["committee"], "10/QĐ-UBND"), (second, "11/QĐ-UBND"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2 and not any(isinstance(r, str) for r in results), results
    assert sum(1 for r in results if getattr(r, "end_event", None) == "end_revoked") == 1
    with world.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Decision).where(Decision.kind == "revocation")) == 1
        assert session.get(Certificate, certificate_id).status == "revoked"


def test_a_revoked_products_history_verifies(world, people):
    cycle = Cycle(world, SEED).start().through_dossier()
    certificate_id = certificate_of(world, SEED, instance_id=cycle.instance_id)
    opened = open_on(world, people, certificate_id)
    task = decision_task(world, opened.instance_id)
    revocations.decide(world, people["committee"], task.id, True, "5/QĐ-UBND", date(2026, 3, 2), "Chủ tịch", "")
    report = verification.verify(world, [opened.instance_id, cycle.instance_id])
    assert report.ok, report


def test_the_two_tier_variant_runs_the_same_revocation(world, people):
    """Lào Cai runs its own two-tier diagram: its pools are the same."""
    sapa = certificate_of(world, SAPA)
    office_lc = person(world, "vp.lc", "province_office", "LC")
    opened = open_on(world, {"office": office_lc}, sapa)
    with world.db.transaction() as session:
        instance = session.get(ProcessInstance, opened.instance_id)
        assert instance.definition.province_id == session.get(Certificate, sapa).province_id
    task = decision_task(world, opened.instance_id)
    with pytest.raises(RevocationRefused):
        revocations.decide(world, people["committee"], task.id, True, "3/QĐ-UBND", date(2026, 3, 2), "A", "")
    outcome = revocations.decide(world, people["committee_lc"], task.id, True, "3/QĐ-UBND", date(2026, 3, 2),
                                 "Chủ tịch UBND tỉnh Lào Cai", "")
    assert outcome.end_event == "end_revoked"
