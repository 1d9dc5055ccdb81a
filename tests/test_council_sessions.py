"""A council session through the engine, on SQLite and PostgreSQL: the
multi-instance sheet gives each member present their own task, nobody else
may touch it, recusals, the bounded re-scoring loop, five members at the
same moment, and a forged member sheet caught by `ocop audit verify`."""
import threading

import pytest
from lxml import etree
from sqlalchemy import select, update

from audit import verification
from engine import events
from engine.access import load_actor
from engine.errors import ClaimedByOther, NotAllowed
from engine.samples import levels_for_total
from programme.council_minutes import session_minutes
from programme.councils import CouncilRefused, open_session, remove_member, sign_off_session
from storage.council_models import CouncilMember
from storage.models import Incident, Product, User
from testkit.cycle import Cycle
from testkit.web_login import login
from tests.support import tamper
from tests.support.councils import MEMBERS, province_council
from tests.support.inbox_world import PEPPER, add_officer, user_id

DISTRICT = "QT-GL"
EXTRA = ("hd.qt-gl.a", "hd.qt-gl.b", "hd.qt-gl.c", "hd.qt-gl.d")


@pytest.fixture
def council(world):
    """Gio Linh's district council of five: hd.qt-gl (secretary, the first
    holder of the role), the chair, three members (engine.driver.council_roster);
    the pepper is scored on set S07, whose B.4.1 has per-star minimums."""
    for username in EXTRA:
        add_officer(world, username, "district_council", DISTRICT)
    with world.db.transaction() as session:
        session.execute(update(Product).where(Product.name == PEPPER).values(group_code="S07"))
    return world


def at_session(world) -> Cycle:
    cycle = Cycle(world, PEPPER).start().through_dossier()
    assert cycle.ready_forms() == ["council_attendance"]
    return cycle


def sheet_tasks(cycle):
    return sorted((t for t in cycle.ready() if t.form_key == "council_sheet"), key=lambda t: t.assignee_id)


def actor(world, uid):
    with world.db.transaction() as session:
        return load_actor(session, uid)


def test_each_member_present_gets_their_own_sheet_and_nobody_else_may_fill_it(council):
    cycle = at_session(council)
    secretary, chair = user_id(council, "hd.qt-gl"), user_id(council, EXTRA[0])
    absent = user_id(council, EXTRA[3])
    present = [uid for uid in (secretary, chair, *(user_id(council, u) for u in EXTRA[1:3]))]
    cycle.open_session(present)
    tasks = sheet_tasks(cycle)
    assert [t.assignee_id for t in tasks] == sorted(present)
    assert {t.element_id for t in tasks} == {"task_score_district"} and len({t.id for t in tasks}) == 4
    mine, colleague = tasks[0], tasks[1]
    sheet = {"levels": levels_for_total("S07", 75)}
    with pytest.raises(ClaimedByOther):  # a colleague's sheet
        council.complete_task(colleague.id, sheet, actor(council, mine.assignee_id))
    with pytest.raises(ClaimedByOther):  # the absent member holds the role but has no sheet
        council.complete_task(mine.id, sheet, actor(council, absent))
    with pytest.raises(NotAllowed):  # released to the area, it would be anybody's
        council.unclaim(mine.id, actor(council, mine.assignee_id))
    with pytest.raises(NotAllowed):
        council.reassign(mine.id, actor(council, user_id(council, "qlct.qt")), actor(council, absent))
    council.complete_task(mine.id, sheet, actor(council, mine.assignee_id))
    assert len(sheet_tasks(cycle)) == 3


def test_the_b41_case_ranks_three_stars_and_says_why(council):
    cycle = at_session(council)
    cycle.open_session()
    two = next(lv["key"] for lv in _b41() if lv["points"] == 2)
    for task in sheet_tasks(cycle):
        levels = {**levels_for_total("S07", 80), "B.4.1": two}
        council.complete_task(task.id, {"levels": levels}, actor(council, task.assignee_id))
    rank = cycle.data()["district_rank"]
    assert rank["band_stars"] == 4 and rank["stars"] == 3 and rank["members"] == 5
    assert any("B.4.1" in reason["vi"] for reason in rank["reasons"])
    # The chair confirms the minutes; the district recognises 3 stars.
    sign_off = cycle.task("council_sign_off")
    assert sign_off.assignee_id == user_id(council, EXTRA[0])
    cycle.do("council_sign_off", {"confirmed": True})
    instance = cycle.instance()
    assert (instance.status, instance.end_event, instance.stars) == ("completed", "end_recognised", 3)


def _b41():
    from storage.criteria import scorable_items
    return next(i for i in scorable_items("S07") if i["id"] == "B.4.1")["levels"]


def test_a_recused_member_does_not_count(council):
    cycle = at_session(council)
    cycle.open_session()
    recusing = sheet_tasks(cycle)[2].assignee_id
    cycle.score([60, 60, 60, 60, 60], recused={recusing: "Là thành viên hội đồng quản trị của hợp tác xã"})
    rank = cycle.data()["district_rank"]
    assert rank["recused"] == [recusing] and rank["members"] == 4 and str(recusing) not in rank["totals"]


def test_members_far_apart_score_again_at_most_twice(council):
    cycle = at_session(council)
    cycle.open_session()
    cycle.score([60, 60, 60, 60, 80])
    spread = cycle.task("council_spread")
    assert spread.assignee_id == user_id(council, "hd.qt-gl")  # the secretary sees it
    assert cycle.data()["district_rank"]["spread_exceeded"]
    cycle.do("council_spread", {"notes": "Thảo luận tiêu chí B.4 và C.2, chấm lại"})
    assert len(sheet_tasks(cycle)) == 5  # everybody scores again
    cycle.score([60, 60, 60, 60, 80])
    cycle.do("council_spread", {"notes": "Vẫn chênh lệch, chấm lại lần hai"})
    cycle.score([60, 60, 60, 60, 80])
    # Two re-scorings: the council goes on to the minutes, the spread stated.
    assert cycle.ready_forms() == ["council_sign_off"]
    rank = cycle.data()["district_rank"]
    assert rank["spread_exceeded"] and any(r["code"] == "spread" for r in rank["reasons"])
    assert cycle.data()["district_rescorings"] == 2


def test_a_session_without_quorum_is_refused_by_the_panel(council):
    """The session page refuses it first (tests/test_councils.py); a
    completion that bypassed it is stopped by the council_panel handler."""
    cycle = at_session(council)
    cycle.open_session([user_id(council, "hd.qt-gl"), user_id(council, EXTRA[1])])
    assert cycle.ready_forms() == []
    with council.db.transaction() as session:
        incident = session.scalar(select(Incident).where(Incident.instance_id == cycle.instance_id))
    assert incident.element_id == "service_panel_district" and "Không đủ điều kiện họp" in incident.error


def test_five_members_submitting_at_the_same_moment_all_count(council):
    cycle = at_session(council)
    cycle.open_session()
    tasks = sheet_tasks(cycle)
    start, errors = threading.Barrier(len(tasks)), []

    def submit(task, total):
        member = actor(council, task.assignee_id)
        start.wait()
        try:
            council.complete_task(task.id, {"levels": levels_for_total("S07", total)}, member)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)
    threads = [threading.Thread(target=submit, args=(t, 70 + i)) for i, t in enumerate(tasks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rank = cycle.data()["district_rank"]
    assert rank["members"] == 5 and rank["average"] == 72.0
    assert cycle.ready_forms() == ["council_sign_off"]
    assert verification.verify(council, [cycle.instance_id]).ok


def test_a_forged_member_sheet_is_caught_by_audit_verify(council):
    cycle = at_session(council)
    cycle.hold_council([60, 62, 61, 60, 59])
    assert verification.verify(council, [cycle.instance_id]).ok
    with council.db.transaction() as session:
        tamper.drop_append_only_guard(session)
        event = tamper.event_where(session, cycle.instance_id, "task_completed", form_key="council_sheet")
        forged = {**event.data, "form": {**event.data["form"], "levels": levels_for_total("S07", 100)}}
        tamper.rewrite(session, cycle.instance_id, event.seq, forged)
    report = verification.verify(council, [cycle.instance_id])
    assert not report.ok
    # The chain was recomputed, so only running rank_council again on the
    # recorded sheets shows it: the result it recorded no longer follows.
    assert [p.kind for p in report.problems] == [events.STATE_DRIFT]
    assert "district_rank" in report.problems[0].message


@pytest.mark.parametrize("path, levels", [("processes/ocop_cycle.bpmn", ("district", "province", "central")),
                                          ("processes/variants/ocop_cycle_two_tier.bpmn", ("province", "central"))])
def test_both_diagrams_carry_the_parallel_multi_instance_sheet(path, levels):
    root = etree.parse(path, etree.XMLParser(resolve_entities=False)).getroot()
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
    for level in levels:
        task = root.find(f".//bpmn:userTask[@id='task_score_{level}']", ns)
        mi = task.find("bpmn:multiInstanceLoopCharacteristics", ns)
        assert mi is not None and mi.get("isSequential") != "true"
        assert mi.find("bpmn:loopDataInputRef", ns).text == f"{level}_panel"


def test_the_producer_reads_the_result_and_its_reasons_once_the_minutes_are_confirmed(council, app):
    cycle = at_session(council)
    cycle.open_session()
    two = next(lv["key"] for lv in _b41() if lv["points"] == 2)
    for task in sheet_tasks(cycle):
        council.complete_task(task.id, {"levels": {**levels_for_total("S07", 80), "B.4.1": two}},
                              actor(council, task.assignee_id))
    client = app.test_client()
    login(client, "htx.giomy")
    page = client.get(f"/portal/products/{cycle.product_id}").get_data(as_text=True)
    assert "Kết quả đánh giá của hội đồng" not in page  # not disclosed before the session ends
    cycle.do("council_sign_off", {"confirmed": True})
    page = client.get(f"/portal/products/{cycle.product_id}").get_data(as_text=True)
    assert "Kết quả đánh giá của hội đồng" in page and "Hội đồng cấp huyện" in page
    assert "Tiêu chí B.4.1" in page and "4 sao cần ít nhất 3 điểm" in page


def test_an_attendance_is_never_typed_in_through_the_form_or_the_api(council, app):
    cycle = at_session(council)
    task = cycle.task("council_attendance")
    forged = cycle.driver.council_session(task)
    forged["members"] = [m for m in forged["members"] if m["role"] in ("chair", "secretary")]
    forged["present"] = [m["user_id"] for m in forged["members"]]
    with pytest.raises(NotAllowed):
        council.complete_task(task.id, forged, actor(council, task.assignee_id or user_id(council, "hd.qt-gl")))
    client = app.test_client()
    token = login(client, "hd.qt-gl")
    answer = client.post(f"/api/v1/tasks/{task.id}/complete", json=forged, headers={"X-CSRFToken": token})
    assert answer.status_code == 403
    page = client.post(f"/inbox/tasks/{task.id}", data={"csrf_token": token, "present": "1"})
    assert page.status_code in (302, 403)  # to the council pages, or refused: never recorded
    assert cycle.ready_forms() == ["council_attendance"]


def test_the_advisory_team_reads_the_self_assessment_before_the_council(world, app):
    """Two-tier (Lào Cai): the dossier carries form 02 criterion by criterion."""
    cycle = Cycle(world, "Rượu mận Sa Pa").start()
    for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan"):
        if form_key in cycle.ready_forms():
            cycle.do(form_key)
    claimed = levels_for_total("S15", 77)
    cycle.do("support_record")
    cycle.do("submit_dossier", {"evidence": ["lab_test"], "self_assessment": claimed})
    assert cycle.data()["dossier"]["self_assessment_score"] == 77
    cycle.do("commune_assessment")
    task = cycle.task("advisory_review")
    client = app.test_client()
    login(client, "tutvan.lc")
    page = client.get(f"/inbox/tasks/{task.id}").get_data(as_text=True)
    assert "Phiếu tự đánh giá của chủ thể (mẫu 02)" in page and "tổng 77" in page
    cycle.do("advisory_review", {"decision": "forward", "self_assessment_notes": "Tự chấm sát thực tế"})
    assert cycle.ready_forms() == ["council_attendance"]


def test_the_minutes_of_a_province_session_on_the_shipped_cycle(world):
    """The district scores 75 (one-member council), the product waits for the
    provincial round; Quảng Trị's stored council of five opens a session on
    the session page's use case, one member recuses, the members disagree
    once, the chair confirms: the minutes show it all, read from the history."""
    cycle = Cycle(world, PEPPER).start().through_dossier()
    cycle.hold_council([75])
    task = cycle.task("council_attendance")  # the provincial round's timer fired
    council_id, ids = province_council(world)
    secretary = next(u for u, _n, role, _d in MEMBERS if role == "secretary")
    chair = next(u for u, _n, role, _d in MEMBERS if role == "chair")
    with world.db.transaction() as session:
        secretary_actor = load_actor(session, ids[secretary])
    session_id = open_session(world, secretary_actor, council_id, [task.id], list(ids.values()),
                              world.clock().date(), "Hội trường Sở Nông nghiệp và Môi trường")
    recusing = sheet_tasks(cycle)[-1].assignee_id
    cycle.score([70, 72, 71, 85, 70], recused={recusing: "Có người thân là thành viên hợp tác xã"})
    cycle.do("council_spread", {"notes": "Thảo luận phần C, chấm lại"})
    cycle.score([78, 79, 80, 80, 79], recused={recusing: "Có người thân là thành viên hợp tác xã"})
    assert sign_off_session(world, actor(world, ids[chair]), session_id, "Nhất trí") == 1
    with world.db.transaction() as session:
        minutes = session_minutes(session, session_id)
        item = minutes.items[0]
        assert minutes.quorum.met and len(minutes.roster) == 5
        recused = [sheet for sheet in item.sheets if sheet.recused]
        assert [s.user_id for s in recused] == [recusing] and "người thân" in recused[0].conflict_reason
        scored = [sheet for sheet in item.sheets if not sheet.recused]
        assert len(scored) == 4 and all(sheet.rounds == 2 for sheet in scored)
        assert item.rank["average"] == pytest.approx(79.25) and item.rank["recognised_stars"] == 4
        assert [note.notes for note in item.spread_notes] == ["Thảo luận phần C, chấm lại"]
        assert item.sign_off is not None and item.sign_off.notes == "Nhất trí"
    cycle.settle()  # the province's recognition decision (issue 16)
    assert cycle.instance().stars == 4


def test_a_disqualifier_upheld_by_the_council_ends_the_cycle_unrecognised(council):
    cycle = at_session(council)
    cycle.open_session()
    members = [task.assignee_id for task in sheet_tasks(cycle)]
    cycle.score([85], eliminations={uid: ["set#0"] for uid in members[:3]})
    rank = cycle.data()["district_rank"]
    assert rank["disqualified"] and rank["stars"] == 0 and rank["average"] == 85
    cycle.do("council_sign_off", {"confirmed": True})
    instance = cycle.instance()
    assert (instance.status, instance.end_event, instance.stars) == ("completed", "end_not_recognised", None)


def test_a_member_with_a_sheet_waiting_cannot_leave_the_council(world):
    cycle = Cycle(world, PEPPER).start().through_dossier()
    cycle.hold_council([75])
    task = cycle.task("council_attendance")
    council_id, ids = province_council(world)
    secretary = next(u for u, _n, role, _d in MEMBERS if role == "secretary")
    member = next(u for u, _n, role, _d in MEMBERS if role == "member")
    open_session(world, actor(world, ids[secretary]), council_id, [task.id], list(ids.values()),
                 world.clock().date(), "Phòng họp số 2")
    admin = actor(world, user_id(world, "admin"))
    with world.db.transaction() as session:
        seat = session.scalar(select(CouncilMember.id).where(CouncilMember.user_id == ids[member]))
    with pytest.raises(CouncilRefused, match="đang chờ"):
        remove_member(world, admin, seat)
    mine = next(t for t in sheet_tasks(cycle) if t.assignee_id == ids[member])
    world.complete_task(mine.id, {"levels": levels_for_total("S10", 80)}, actor(world, ids[member]))
    remove_member(world, admin, seat)  # done: the seat ends, the role with it
    with pytest.raises(NotAllowed):
        world.complete_task(sheet_tasks(cycle)[0].id, {"levels": levels_for_total("S10", 80)},
                            actor(world, ids[member]))


def test_a_member_s_inbox_lists_their_own_sheet_not_their_colleagues(council, app):
    cycle = at_session(council)
    cycle.open_session()
    mine = sheet_tasks(cycle)[1]
    with council.db.transaction() as session:
        username = session.get(User, mine.assignee_id).username
    client = app.test_client()
    login(client, username)
    page = client.get("/inbox/").get_data(as_text=True)
    listed = {t.id for t in sheet_tasks(cycle) if f"/inbox/tasks/{t.id}" in page}
    assert listed == {mine.id}
    supervisor = app.test_client()
    login(supervisor, "qlct.qt")  # the province's program manager sees the whole council's work
    page = supervisor.get("/inbox/").get_data(as_text=True)
    assert all(f"/inbox/tasks/{t.id}" in page for t in sheet_tasks(cycle))
