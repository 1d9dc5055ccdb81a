"""Councils as data (programme/councils.py), on SQLite and PostgreSQL:
who keeps a roster, one chair and one secretary, the admin log, the
quorum refused with nothing written, a session opened for the products
waiting, its minutes and the chair's sign-off."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, text

from audit.chain import verify_chain
from engine.access import supervision_of
from engine.errors import NotAllowed
from handlers.council_rules import quorum
from programme import councils
from programme.council_minutes import session_minutes
from programme.councils import CouncilRefused, QuorumNotMet
from storage.council_models import Council, CouncilAgenda, CouncilMember, CouncilSession
from storage.models import AdminLogEntry, AuditEvent, InboxTask, RoleAssignment
from tests.support.councils import (
    actor,
    area_id,
    make_accounts,
    products_waiting,
    province_council,
)


def count(engine, model, *where) -> int:
    with engine.db.reading() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def council_log(engine, council_id):
    with engine.db.reading() as session:
        return [(e.action, e.actor_name, e.province_id) for e in reversed(councils.council_log(session, council_id))]


# --- the quorum rule -----------------------------------------------------------------------

ROSTER = [{"user_id": 1, "role": "chair"}, {"user_id": 2, "role": "vice_chair"}, {"user_id": 3, "role": "member"},
          {"user_id": 4, "role": "member"}, {"user_id": 5, "role": "secretary"}]


@pytest.mark.parametrize("present, met, required", [
    ([1, 2, 3], False, 4), ([2, 3, 4, 5], False, 4), ([1, 2, 3, 4], True, 4), ([1, 2, 3, 4, 5, 99], True, 4)])
def test_three_quarters_of_five_is_four_with_the_chair(present, met, required):
    figures = quorum(ROSTER, present, 0.75, True)
    assert (figures.met, figures.required, figures.roster) == (met, required, 5)
    assert ("Đủ điều kiện" if met else "Không đủ") in figures.message_vi()
    assert quorum(ROSTER[:4], [2, 3, 4], 0.75, False).met  # 3/4 of four is three, chair optional


# --- keeping the roster --------------------------------------------------------------------

def test_the_provinces_program_manager_keeps_its_council_and_every_change_is_logged(world):
    council_id, ids = province_council(world, by="qlct.qt")
    assert council_log(world, council_id)[0][:2] == ("council_created", "Quản lý chương trình Tỉnh Quảng Trị")
    assert [a for a, _n, _p in council_log(world, council_id)] == ["council_created"] + ["member_added"] * 5
    assert {p for _a, _n, p in council_log(world, council_id)} == {area_id(world, "QT")}
    # Each member got the council lane's role at the province (hd.qt already had it).
    assert count(world, RoleAssignment, RoleAssignment.role == "province_council",
                 RoleAssignment.jurisdiction_id == area_id(world, "QT")) == 5
    manager = actor(world, "qlct.qt")
    with world.db.reading() as session:
        seat = session.scalar(select(CouncilMember).where(CouncilMember.user_id == ids["uv1.hdqt"]))
    councils.change_role(world, manager, seat.id, "vice_chair")
    councils.remove_member(world, manager, seat.id)
    councils.change_settings(world, manager, council_id, "Hội đồng tỉnh Quảng Trị", 0.6, False, 12)
    assert [a for a, _n, _p in council_log(world, council_id)][-3:] == [
        "member_role", "member_removed", "council_settings"]
    with world.db.reading() as session:
        assert [m.user_id for m in councils.former_members(session, council_id)] == [ids["uv1.hdqt"]]
        assert len(councils.active_members(session, council_id)) == 4
    # A former member no longer holds the council's role there, so no longer sees its work.
    assert count(world, RoleAssignment, RoleAssignment.role == "province_council",
                 RoleAssignment.jurisdiction_id == area_id(world, "QT")) == 4
    with world.db.reading() as session:
        removed = next(e for e in councils.council_log(session, council_id) if e.action == "member_removed")
        assert "thu hồi quyền hội đồng tại địa bàn" in removed.message
        # The diagrams' admin log does not list council entries.
        from programme.definitions import admin_log
        assert all(entry.subject is None for entry in admin_log(session))


def test_another_provinces_manager_is_refused_and_the_central_council_is_the_administrators(world):
    ids = make_accounts(world)
    qt = area_id(world, "QT")
    with pytest.raises(NotAllowed):
        councils.create_council(world, actor(world, "qlct.lc"), "province", qt, "Hội đồng lạ")
    with pytest.raises(NotAllowed):
        councils.create_council(world, actor(world, "qlct.qt"), "central", area_id(world, "VN"), "Trung ương")
    with pytest.raises(NotAllowed):
        councils.create_council(world, actor(world, "hd.qt"), "province", qt, "Hội đồng tự lập")
    assert count(world, Council) == 0 and count(world, AdminLogEntry, AdminLogEntry.subject.is_not(None)) == 0
    central = councils.create_council(world, actor(world, "admin"), "central", area_id(world, "VN"), "Trung ương")
    council_id = councils.create_council(world, actor(world, "qlct.qt"), "district", area_id(world, "QT-GL"),
                                         "Hội đồng huyện Gio Linh")
    # Councils out of reach read as unknown (pages answer 404).
    with pytest.raises(councils.UnknownCouncil):
        councils.add_member(world, actor(world, "qlct.lc"), council_id, ids["ct.hdqt"], "", "chair")
    with pytest.raises(councils.UnknownCouncil):
        councils.add_member(world, actor(world, "qlct.qt"), central, ids["ct.hdqt"], "", "chair")
    councils.add_member(world, actor(world, "admin"), central, ids["uv1.hdqt"], "Bộ Công Thương", "member")
    with pytest.raises(NotAllowed):  # a member sees the council, and may not change it
        councils.add_member(world, actor(world, "uv1.hdqt"), central, ids["ct.hdqt"], "", "chair")
    with pytest.raises(CouncilRefused, match="đã có hội đồng"):
        councils.create_council(world, actor(world, "admin"), "district", area_id(world, "QT-GL"), "Lần hai")
    with pytest.raises(CouncilRefused, match="cấp tỉnh"):
        councils.create_council(world, actor(world, "admin"), "province", area_id(world, "QT-GL"), "Sai cấp")


def test_a_second_chair_or_secretary_is_refused(world):
    council_id, ids = province_council(world)
    extra = make_accounts(world, [("ct2.hdqt", "Người Thứ Hai", "chair", "")])["ct2.hdqt"]
    admin = actor(world, "admin")
    before = count(world, AdminLogEntry)
    for role in ("chair", "secretary"):
        with pytest.raises(CouncilRefused, match="Hội đồng đã có"):
            councils.add_member(world, admin, council_id, extra, "Sở Y tế", role)
    with world.db.reading() as session:
        vice = session.scalar(select(CouncilMember.id).where(CouncilMember.user_id == ids["pct.hdqt"]))
    with pytest.raises(CouncilRefused, match="Lê Văn Chủ"):
        councils.change_role(world, admin, vice, "chair")
    with pytest.raises(CouncilRefused, match="đã là thành viên"):
        councils.add_member(world, admin, council_id, ids["uv2.hdqt"], "", "member")
    assert count(world, AdminLogEntry) == before
    councils.add_member(world, admin, council_id, extra, "Sở Y tế", "member")  # an ordinary seat is fine


def test_the_database_itself_refuses_a_second_active_chair(world):
    council_id, ids = province_council(world)
    with pytest.raises(Exception):
        with world.db.transaction() as session:
            session.add(CouncilMember(council_id=council_id, user_id=ids["uv1.hdqt"], department="",
                                      council_role="chair"))
    with pytest.raises(Exception):  # and the admin log stays append-only with its new columns
        with world.db.transaction() as session:
            session.execute(text("UPDATE admin_log SET subject = 'x'"))


def test_a_member_of_another_council_does_not_see_this_one(world):
    council_id, _ids = province_council(world)
    with world.db.reading() as session:
        assert councils.readable_council(session, actor(world, "hd.qt"), council_id) is not None
        assert councils.readable_council(session, actor(world, "qlct.qt"), council_id) is not None
        assert councils.readable_council(session, actor(world, "kiemtoan"), council_id) is not None
        for outsider in ("hd.lc", "qlct.lc", "hd.qt-gl", "cb.qt-gl"):
            who = actor(world, outsider)
            assert councils.readable_council(session, who, council_id) is None
            assert councils.councils_for(session, who) == []
            # The SQL form agrees with the predicate.
            seen = session.scalars(select(Council.id).where(
                councils.access.seen_councils(who, supervision_of(session, who)))).all()
            assert seen == []


# --- sessions --------------------------------------------------------------------------------

@pytest.fixture
def waiting(world):
    council_id, ids = province_council(world)
    instance_ids = products_waiting(world, 2)
    yield world, council_id, ids, instance_ids


def task_ids(engine, instance_ids, form_key="council_attendance"):
    with engine.db.reading() as session:
        return list(session.scalars(select(InboxTask.id).where(InboxTask.instance_id.in_(instance_ids),
                                                               InboxTask.form_key == form_key)
                                    .order_by(InboxTask.instance_id)))


def nothing_written(engine, instance_ids, events_before):
    assert count(engine, CouncilSession) == 0 and count(engine, CouncilAgenda) == 0
    assert count(engine, AuditEvent, AuditEvent.instance_id.in_(instance_ids)) == events_before
    assert len(task_ids(engine, instance_ids)) == len(instance_ids)


@pytest.mark.parametrize("present, chair", [(["ct.hdqt", "pct.hdqt", "hd.qt"], True),
                                            (["pct.hdqt", "uv1.hdqt", "uv2.hdqt", "hd.qt"], False)])
def test_without_quorum_the_session_does_not_open_and_nothing_is_written(waiting, present, chair):
    engine, council_id, ids, instance_ids = waiting
    events_before = count(engine, AuditEvent, AuditEvent.instance_id.in_(instance_ids))
    with pytest.raises(QuorumNotMet) as refused:
        councils.open_session(engine, actor(engine, "hd.qt"), council_id, task_ids(engine, instance_ids),
                              [ids[u] for u in present], date(2026, 3, 10), "Hội trường UBND tỉnh")
    figures = refused.value.quorum
    assert (figures.present, figures.required, figures.chair_present) == (len(present), 4, chair)
    assert f"{len(present)}/5" in str(refused.value) and ("vắng mặt" in str(refused.value)) == (not chair)
    nothing_written(engine, instance_ids, events_before)


def test_a_product_no_longer_waiting_or_an_outsider_writes_nothing(waiting):
    engine, council_id, ids, instance_ids = waiting
    events_before = count(engine, AuditEvent, AuditEvent.instance_id.in_(instance_ids))
    four = [ids[u] for u in ("ct.hdqt", "pct.hdqt", "uv1.hdqt", "hd.qt")]
    with pytest.raises(CouncilRefused, match="không còn chờ"):
        councils.open_session(engine, actor(engine, "hd.qt"), council_id,
                              task_ids(engine, instance_ids) + ["00000000-0000-0000-0000-000000000000"],
                              four, date(2026, 3, 10), "Hội trường")
    with pytest.raises(NotAllowed):  # a member who is neither chair nor secretary
        councils.open_session(engine, actor(engine, "uv1.hdqt"), council_id, task_ids(engine, instance_ids),
                              four, date(2026, 3, 10), "Hội trường")
    with pytest.raises(councils.UnknownCouncil):
        councils.open_session(engine, actor(engine, "hd.lc"), council_id, task_ids(engine, instance_ids),
                              four, date(2026, 3, 10), "Hội trường")
    nothing_written(engine, instance_ids, events_before)


def test_four_with_the_chair_open_the_session_for_every_product_at_once(waiting):
    engine, council_id, ids, instance_ids = waiting
    secretary = actor(engine, "hd.qt")
    with engine.db.reading() as session:
        waiting_now = councils.waiting_products(session, secretary, council_id)
        entry, = councils.councils_for(session, secretary)
        assert (entry.waiting, entry.members, entry.my_role, entry.kept) == (2, 5, "secretary", False)
        entry, = councils.councils_for(session, actor(engine, "qlct.qt"))
        assert (entry.waiting, entry.my_role, entry.kept) == (2, None, True)
        assert {area.code for _level, area in councils.council_areas_to_keep(session, actor(engine, "qlct.qt"))} \
            == {"QT", "QT-GL", "QT-CL"}
        assert ("central", "VN") in {(level, area.code) for level, area in
                                     councils.council_areas_to_keep(session, actor(engine, "admin"))}
    assert sorted(w.instance_id for w in waiting_now) == sorted(instance_ids)
    four = [ids[u] for u in ("ct.hdqt", "pct.hdqt", "uv1.hdqt", "hd.qt")]
    session_id = councils.open_session(engine, secretary, council_id, [w.task_id for w in waiting_now], four,
                                       date(2026, 3, 10), "Hội trường UBND tỉnh")
    assert task_ids(engine, instance_ids) == []
    assert len(task_ids(engine, instance_ids, "council_sign_off")) == 2
    with engine.db.reading() as session:
        assert councils.waiting_products(session, secretary, council_id) == []
        completed = session.scalars(select(AuditEvent).where(
            AuditEvent.instance_id.in_(instance_ids), AuditEvent.kind == "task_completed")).all()
        for instance_id in instance_ids:
            assert verify_chain(session, instance_id) == []
    assert len(completed) == 2
    form = completed[0].data["form"]
    assert (form["session_id"], form["council_id"], form["present"]) == (session_id, council_id, sorted(four))
    assert (form["chair_id"], form["secretary_id"]) == (ids["ct.hdqt"], ids["hd.qt"])
    assert (form["quorum_fraction"], form["chair_required"], form["spread_limit"]) == (0.75, True, 10.0)
    assert {m["role"] for m in form["members"]} == {"chair", "vice_chair", "member", "secretary"}
    assert form["held_on"] == "2026-03-10" and completed[0].actor_id == ids["hd.qt"]

    with engine.db.reading() as session:
        minutes = session_minutes(session, session_id)
        assert [m["present"] for m in minutes.roster].count(True) == 4 and minutes.quorum.met
        assert len(minutes.items) == 2 and not minutes.signed_off
        assert [s.user_id for s in minutes.items[0].sheets][0] == ids["ct.hdqt"]
        assert [s.id for s in councils.sessions_for(session, actor(engine, "kiemtoan"))] == [session_id]
        assert [s.id for s in councils.sessions_for(session, actor(engine, "uv2.hdqt"))] == [session_id]
        assert councils.sessions_for(session, actor(engine, "hd.lc")) == []
    # TODO(lead): on the real diagram, sheets (council_sheet), rank_council and
    # council_spread come between attendance and sign-off: assert the minutes'
    # sheets, totals, averages, reasons and recusals here once it lands.

    with pytest.raises(NotAllowed):
        councils.sign_off_session(engine, secretary, session_id, "")
    assert councils.sign_off_session(engine, actor(engine, "ct.hdqt"), session_id, "Nhất trí") == 2
    with engine.db.reading() as session:
        minutes = session_minutes(session, session_id)
        assert minutes.signed_off and minutes.items[0].sign_off.notes == "Nhất trí"
        assert minutes.session.status == "closed"
    with pytest.raises(CouncilRefused, match="chờ xác nhận"):
        councils.sign_off_session(engine, actor(engine, "ct.hdqt"), session_id, "")


def test_a_program_manager_may_open_it_recorded_as_the_secretarys_attendance(waiting):
    engine, council_id, ids, instance_ids = waiting
    four = [ids[u] for u in ("ct.hdqt", "uv1.hdqt", "uv2.hdqt", "hd.qt")]
    session_id = councils.open_session(engine, actor(engine, "qlct.qt"), council_id,
                                       task_ids(engine, instance_ids)[:1], four, date(2026, 3, 11), "Sở NN&MT")
    with engine.db.reading() as session:
        meeting = session.get(CouncilSession, session_id)
        assert meeting.opened_by == actor(engine, "qlct.qt").user_id and len(meeting.agenda) == 1
        event = session.scalar(select(AuditEvent).where(AuditEvent.instance_id == instance_ids[0],
                                                        AuditEvent.kind == "task_completed"))
        assert event.actor_id == ids["hd.qt"]


def test_the_minutes_show_each_members_sheet_and_recusal_from_the_audit_events(world):
    council_id, ids = province_council(world)
    instance_id, = products_waiting(world, 1, sheets=2)
    present = [ids[u] for u in ("ct.hdqt", "pct.hdqt", "uv1.hdqt", "hd.qt")]
    session_id = councils.open_session(world, actor(world, "hd.qt"), council_id, task_ids(world, [instance_id]),
                                       present, date(2026, 3, 10), "Hội trường")
    with world.db.reading() as session:
        minutes = session_minutes(session, session_id)
        code = minutes.items[0].group_code
    from programme.council_minutes import _items
    items = _items(code)
    levels = {item["id"]: item["levels"][-1]["key"] for item in items}   # the top level everywhere
    # TODO(lead): on the real diagram these are the members' multi-instance sheet tasks.
    world.complete_task(task_ids(world, [instance_id], "council_sheet")[0],
                        {"recused": False, "levels": levels, "eliminations": [], "comments": "Sản phẩm tốt"},
                        actor(world, "ct.hdqt"))
    world.complete_task(task_ids(world, [instance_id], "council_sheet")[0],
                        {"recused": True, "conflict_reason": "Là thành viên hợp tác xã", "levels": {},
                         "eliminations": [], "comments": ""}, actor(world, "uv1.hdqt"))
    with world.db.reading() as session:
        item = session_minutes(session, session_id).items[0]
        minutes = session_minutes(session, session_id)
    sheets = {sheet.user_id: sheet for sheet in item.sheets}
    chair = sheets[ids["ct.hdqt"]]
    assert chair.submitted and not chair.recused and len(chair.lines) == len(items)
    assert chair.total == sum(item["levels"][-1]["points"] for item in items) == sum(chair.sections.values())
    assert chair.lines[0].level == items[0]["levels"][-1]["text_vi"] and chair.comments == "Sản phẩm tốt"
    recused = sheets[ids["uv1.hdqt"]]
    assert recused.recused and recused.conflict_reason == "Là thành viên hợp tác xã" and recused.total is None
    assert not sheets[ids["pct.hdqt"]].submitted and ids["uv2.hdqt"] not in sheets   # absent: no sheet
    assert [sheet.name for _product, sheet in minutes.recusals] == ["Nguyễn Văn Một"]
    assert item.rank is None and item.sign_off is None
