"""Recognition decisions in the cycle, on SQLite and PostgreSQL with the
fake clock: one numbered decision for several products issues their
certificates and notices; 90+ goes to the ministry as proposed_five; below
90 at the ministry the province recognises on its result or re-evaluates
(once); wrong authorities, reused numbers and two decisions at once are
refused with nothing written; the history verifies."""
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from audit import verification
from engine.access import load_actor
from engine.errors import NotAllowed, OcopError
from handlers.promotion import add_months
from programme.recognition import DecisionRefused, decision_page, issue_decision, waiting_for_decision
from programme.rounds import where_it_stands
from storage.models import Notification, PromotionListing
from storage.recognition_models import Certificate, Decision, DecisionItem, RoundEntry
from testkit.cycle import Cycle, sheets
from tests.support.inbox_world import area_id, user_id

PEPPER, RICE, HONEY = "Hồ tiêu Gio Linh", "Gạo hữu cơ Gio Mỹ", "Mật ong rừng Gio Sơn"
SIGNER = "Nguyễn Văn An, Phó Chủ tịch UBND tỉnh"


def actor(world, username):
    with world.db.transaction() as session:
        return load_actor(session, user_id(world, username))


def at_province_decision(world, name, province=80, district=75) -> Cycle:
    """Through the district's and the province's councils, to the province's decision."""
    cycle = Cycle(world, name, decide=False).start().through_dossier()
    cycle.do("score_product", sheets(district))
    cycle.do("score_product", sheets(province))
    assert cycle.ready_forms() == ["recognition_decision"]
    return cycle


def decide(world, cycles, username="ubnd.qt", authority="province", area="QT", number="101/QĐ-UBND", **kwargs):
    with world.db.transaction() as session:
        waiting = {w.instance_id: w for w in waiting_for_decision(session, actor(world, username), authority,
                                                                  area_id(world, area))}
    assert {c.instance_id for c in cycles} <= set(waiting)
    return issue_decision(world, actor(world, username), area_id(world, area), authority, number,
                          kwargs.get("signed_on", world.clock().date()), kwargs.get("signer", SIGNER),
                          [c.instance_id for c in cycles], kwargs.get("round_id"))


def count(world, model, **where):
    with world.db.transaction() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query)


def test_one_decision_for_two_products_issues_two_certificates_and_the_notices(world):
    pepper, rice = at_province_decision(world, PEPPER), at_province_decision(world, RICE, province=85)
    with world.db.transaction() as session:
        standing = where_it_stands(session, pepper.instance_id)
    assert standing.vi.startswith("Chờ quyết định công nhận của Ủy ban nhân dân tỉnh — Đợt 1 năm 2026")
    decision_id = decide(world, [pepper, rice])
    today = world.clock().date()
    for cycle in (pepper, rice):
        instance = cycle.instance()
        assert (instance.status, instance.end_event, instance.stars) == ("completed", "end_recognised", 4)
    with world.db.transaction() as session:
        certificates = session.scalars(select(Certificate).order_by(Certificate.id)).all()
        assert len(certificates) == 2 and len({c.number for c in certificates}) == 2
        assert len({c.verify_code for c in certificates}) == 2
        assert all(c.valid_until == add_months(today, 36) and c.issued_on == today for c in certificates)
        assert all(c.decision_id == decision_id and c.kind == "new" and c.stars == 4 for c in certificates)
        items = session.scalars(select(DecisionItem).where(DecisionItem.decision_id == decision_id)).all()
        assert sorted(i.certificate_id for i in items) == [c.id for c in certificates]
        listings = {row.instance_id: row for row in session.scalars(select(PromotionListing))}
        for certificate in certificates:
            assert listings[certificate.instance_id].certificate_id == certificate.id
            assert listings[certificate.instance_id].valid_until == certificate.valid_until
        entries = session.scalars(select(RoundEntry)).all()
        assert {(e.outcome, e.left_at is not None) for e in entries} == {("recognised", True)}
        for cycle in (pepper, rice):
            recipients = set(session.scalars(select(Notification.recipient_role).where(
                Notification.instance_id == cycle.instance_id, Notification.kind == "recognised")))
            assert recipients == {"producer", "commune_officer"}
        page = decision_page(session, actor(world, "qlct.qt"), decision_id)
        assert page.decision.number == "101/QĐ-UBND" and [line.stars for line in page.lines] == [4, 4]
        assert all(line.certificate_number for line in page.lines)
    assert verification.verify(world, [pepper.instance_id, rice.instance_id]).ok


def test_ninety_plus_is_proposed_to_the_ministry_then_five_stars(world):
    cycle = at_province_decision(world, PEPPER, province=97, district=92)
    decide(world, [cycle])
    assert count(world, Certificate) == 0
    with world.db.transaction() as session:
        item = session.scalar(select(DecisionItem))
        assert (item.outcome, item.stars, item.certificate_id) == ("proposed_five", 5, None)
        standing = where_it_stands(session, cycle.instance_id)
    # March: the ministry's first round (proposals by 30/01) is past; its second takes proposals by 30/07
    assert standing.vi == ("Chờ Hội đồng cấp Trung ương xét (tỉnh đã công nhận kết quả, đề nghị công nhận 5 sao)"
                           " — Đợt 2 năm 2026, xét trước 30/09/2026")
    assert cycle.ready_forms() == ["council_attendance"]
    cycle.do("score_product", sheets(96))
    assert cycle.ready_forms() == ["recognition_decision"]
    with pytest.raises(NotAllowed):  # the province does not sign five stars
        decide(world, [cycle], username="ubnd.qt", authority="ministry", area="VN", number="1/QĐ-BNNMT")
    decide(world, [cycle], username="bo.nnmt", authority="ministry", area="VN", number="1/QĐ-BNNMT")
    assert (cycle.instance().end_event, cycle.instance().stars) == ("end_recognised", 5)
    with world.db.transaction() as session:
        certificate = session.scalar(select(Certificate))
        assert certificate.stars == 5 and session.get(Decision, certificate.decision_id).authority == "ministry"
    assert verification.verify(world, [cycle.instance_id]).ok


def below_ninety_at_the_ministry(world) -> Cycle:
    cycle = at_province_decision(world, PEPPER, province=97, district=92)
    decide(world, [cycle])
    cycle.do("score_product", sheets(84))
    assert cycle.ready_forms() == ["central_fallback"]
    assert cycle.task("central_fallback").role == "province_committee"
    return cycle


def test_below_ninety_the_province_recognises_four_stars_on_the_ministrys_result(world):
    cycle = below_ninety_at_the_ministry(world)
    with world.db.transaction() as session:
        assert where_it_stands(session, cycle.instance_id).vi.startswith("Chờ Ủy ban nhân dân tỉnh quyết định")
    cycle.do("central_fallback", {"choice": "recognise", "reason": "Công nhận theo kết quả của Bộ"},
             actor=actor(world, "ubnd.qt"))
    assert cycle.ready_forms() == ["recognition_decision"]
    decide(world, [cycle], number="102/QĐ-UBND")
    assert (cycle.instance().end_event, cycle.instance().stars) == ("end_recognised", 4)
    with world.db.transaction() as session:
        assert session.scalar(select(Certificate.stars)) == 4
    assert verification.verify(world, [cycle.instance_id]).ok


def test_re_evaluation_by_the_province_happens_once(world):
    cycle = below_ninety_at_the_ministry(world)
    cycle.do("central_fallback", {"choice": "re_evaluate", "reason": "Hồ sơ có tiến bộ, tỉnh đánh giá lại"},
             actor=actor(world, "ubnd.qt"))
    assert cycle.ready_forms() == ["council_attendance"]
    assert cycle.task("council_attendance").role == "province_council"
    cycle.do("score_product", sheets(97))
    decide(world, [cycle], number="103/QĐ-UBND")
    cycle.do("score_product", sheets(84))
    cycle.do("central_fallback", {"choice": "re_evaluate", "reason": "Lần nữa"}, actor=actor(world, "ubnd.qt"))
    assert cycle.ready_forms() == ["recognition_decision"]  # only recognition is left
    decide(world, [cycle], number="104/QĐ-UBND")
    assert (cycle.instance().end_event, cycle.instance().stars) == ("end_recognised", 4)


def test_wrong_authorities_bad_values_and_reused_numbers_are_refused_with_nothing_written(world):
    cycle = at_province_decision(world, PEPPER)
    qt, instance = area_id(world, "QT"), [cycle.instance_id]
    today = world.clock().date()
    refusals = [
        (NotAllowed, "ubnd.lc", "province", qt),           # another province's committee
        (NotAllowed, "ubnd.qt-gl", "province", qt),        # a district committee for a province item
        (DecisionRefused, "ubnd.qt-gl", "district", area_id(world, "QT-GL")),  # not waiting at the district
        (NotAllowed, "hd.qt", "province", qt),             # a council member
        (NotAllowed, "admin", "province", qt),             # the decision is the committee's act
    ]
    for error, username, authority, area in refusals:
        with pytest.raises(error):
            issue_decision(world, actor(world, username), area, authority, "9/QĐ", today, SIGNER, instance)
    committee = actor(world, "ubnd.qt")
    for number, signed_on, signer in (("", today, SIGNER), ("9/QĐ", today, "  "),
                                      ("9/QĐ", today + timedelta(days=1), SIGNER), ("x" * 65, today, SIGNER)):
        with pytest.raises(DecisionRefused):
            issue_decision(world, committee, qt, "province", number, signed_on, signer, instance)
    with pytest.raises(DecisionRefused):
        issue_decision(world, committee, qt, "province", "9/QĐ", today, SIGNER, [])
    assert count(world, Decision) == count(world, DecisionItem) == count(world, Certificate) == 0
    assert cycle.ready_forms() == ["recognition_decision"]
    rice = at_province_decision(world, RICE)
    decide(world, [rice], number="9/QĐ")
    with pytest.raises(DecisionRefused, match="đã được dùng"):
        issue_decision(world, committee, qt, "province", "9/QĐ", today, SIGNER, instance)
    with pytest.raises(DecisionRefused):  # decided already
        issue_decision(world, committee, qt, "province", "10/QĐ", today, SIGNER, [rice.instance_id])
    assert count(world, Decision) == 1 and cycle.ready_forms() == ["recognition_decision"]


def test_two_decisions_at_once_for_the_same_product_one_wins(world):
    cycle = at_province_decision(world, PEPPER)
    committee, qt, today = actor(world, "ubnd.qt"), area_id(world, "QT"), world.clock().date()
    start, results = threading.Barrier(2), []

    def attempt(number):
        start.wait()
        try:
            results.append(issue_decision(world, committee, qt, "province", number, today, SIGNER,
                                          [cycle.instance_id]))
        except OcopError as err:
            results.append(err)
    threads = [threading.Thread(target=attempt, args=(f"{n}/QĐ",)) for n in (21, 22)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(type(r).__name__ for r in results) == ["DecisionRefused", "int"]
    assert count(world, Decision) == count(world, Certificate) == 1
    assert verification.verify(world, [cycle.instance_id]).ok
