"""Evaluation rounds on SQLite and PostgreSQL with the fake clock: the
default calendar, planning changes and their refusals, a product joining
the right round by date, and where it stands for its producer (portal),
in `ocop status` and on the round's page."""
from datetime import date, datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.access import load_actor
from engine.errors import NotAllowed
from programme.councils import open_session
from programme.product_status import summary
from programme.rounds import (
    RoundRefused,
    UnknownRound,
    add_extra_round,
    change_dates,
    close_round,
    plan_year,
    round_page,
    rounds_of,
    where_it_stands,
)
from storage.models import AdminLogEntry, Product
from storage.recognition_models import RoundEntry
from testkit.cycle import Cycle, sheets
from testkit.web_login import login
from tests.support.councils import province_council
from tests.support.inbox_world import area_id, user_id
from web.cli import main

PEPPER = "Hồ tiêu Gio Linh"


def actor(world, username):
    with world.db.transaction() as session:
        return load_actor(session, user_id(world, username))


def at_province_round(world, when: datetime) -> Cycle:
    """Through the district council on `when`: the product joins the province's round."""
    cycle = Cycle(world, PEPPER, decide=False).start().through_dossier()
    world.clock.now = when
    cycle.do("score_product", sheets(75))
    assert cycle.ready_forms() == ["council_attendance"]
    return cycle


def test_default_rounds_and_planning_changes(world):
    manager, qt = actor(world, "qlct.qt"), area_id(world, "QT")
    assert plan_year(world, manager, "province", qt, 2027) == 2
    with world.db.transaction() as session:
        rounds = rounds_of(session, manager, "province", qt, 2027)
    assert [(r.label, r.round.proposals_by, r.round.decide_by) for r in rounds] == [
        ("Đợt 1 năm 2027", date(2027, 4, 30), date(2027, 6, 30)),
        ("Đợt 2 năm 2027", date(2027, 10, 30), date(2027, 12, 30))]
    with pytest.raises(RoundRefused):  # planned already
        plan_year(world, manager, "province", qt, 2027)
    first = rounds[0].round.id
    change_dates(world, manager, first, date(2027, 5, 15), date(2027, 7, 15), "Lùi theo quy chế hội đồng")
    with pytest.raises(RoundRefused, match="Hạn xét phải sau"):
        change_dates(world, manager, first, date(2027, 7, 15), date(2027, 5, 15))
    extra = add_extra_round(world, manager, "province", qt, 2027, date(2027, 8, 15), date(2027, 9, 15))
    close_round(world, manager, extra)
    with pytest.raises(RoundRefused, match="kết thúc"):
        change_dates(world, manager, extra, date(2027, 8, 20), date(2027, 9, 20))
    with pytest.raises(RoundRefused):
        close_round(world, manager, extra)
    with pytest.raises(UnknownRound):  # another province's manager does not even see it
        close_round(world, actor(world, "qlct.lc"), first)
    for username in ("ubnd.qt", "hd.qt"):  # the committee, the council: they read the rounds, plan none
        with pytest.raises(NotAllowed):
            close_round(world, actor(world, username), first)
    with pytest.raises(NotAllowed):  # the ministry's rounds: administrators and the ministry
        plan_year(world, manager, "central", None, 2027)
    assert plan_year(world, actor(world, "bo.nnmt"), "central", None, 2027) == 2
    with world.db.transaction() as session:
        rounds = rounds_of(session, manager, "province", qt, 2027)
        assert [(r.label, r.round.status) for r in rounds] == [
            ("Đợt 1 năm 2027", "open"), ("Đợt 3 năm 2027 (bổ sung)", "closed"), ("Đợt 2 năm 2027", "open")]
        assert rounds[0].round.proposals_by == date(2027, 5, 15) and rounds[0].round.note
        actions = session.scalars(select(AdminLogEntry.action).where(AdminLogEntry.subject == "round")
                                  .order_by(AdminLogEntry.id)).all()
        assert actions == ["round_plan", "round_plan", "round_dates", "round_extra", "round_close",
                           "round_plan", "round_plan"]
        with pytest.raises(NotAllowed):  # a producer does not read the rounds
            rounds_of(session, actor(world, "htx.giomy"), "province", qt, 2027)


@pytest.mark.parametrize("when,label,decide_by", [
    (datetime(2026, 4, 30, 3, tzinfo=timezone.utc), "Đợt 1 năm 2026", "30/06/2026"),
    (datetime(2026, 5, 2, 3, tzinfo=timezone.utc), "Đợt 2 năm 2026", "30/12/2026"),
    (datetime(2026, 11, 2, 3, tzinfo=timezone.utc), "Đợt 1 năm 2027", "30/06/2027"),
])
def test_a_product_joins_the_round_of_its_date_and_says_where_it_stands(world, app, db_url, when, label,
                                                                      decide_by):
    cycle = at_province_round(world, when)
    expected = f"Chờ Hội đồng cấp tỉnh xét — {label}, xét trước {decide_by}"
    with world.db.transaction() as session:
        assert str(where_it_stands(session, cycle.instance_id)) == expected
        product = session.scalar(select(Product).where(Product.name == PEPPER))
        assert summary(session, product).cycle.standing.vi == expected
        entry = session.scalar(select(RoundEntry).where(RoundEntry.instance_id == cycle.instance_id))
        page = round_page(session, actor(world, "qlct.qt"), entry.round_id)
        assert [(row.product_name, row.standing) for row in page.agenda] == [(PEPPER, expected)]
        assert page.may_plan and page.label == label
    council = app.test_client()
    login(council, "hd.qt")  # the province council's inbox: the attendance row names the round
    assert expected in council.get("/inbox/").get_data(as_text=True)
    client = app.test_client()
    login(client, "htx.giomy")
    assert expected in client.get(f"/portal/products/{cycle.product_id}").get_data(as_text=True)
    result = CliRunner().invoke(main, ["status"], env={"OCOP_DATABASE_URL": db_url}, catch_exceptions=False)
    assert f"Tỉnh Quảng Trị — {label}, xét trước {decide_by}: 1 / 0" in result.output


def test_a_council_session_belongs_to_the_round_of_its_products(world):
    cycle = at_province_round(world, datetime(2026, 3, 10, 3, tzinfo=timezone.utc))
    council_id, ids = province_council(world)
    task = cycle.task("council_attendance")
    session_id = open_session(world, actor(world, "hd.qt"), council_id, [task.id], list(ids.values()),
                              world.clock().date(), "Hội trường UBND tỉnh")
    manager, qt = actor(world, "qlct.qt"), area_id(world, "QT")
    with world.db.transaction() as session:
        line = rounds_of(session, manager, "province", qt, 2026)[0]
        assert (line.label, line.waiting, line.in_session, line.decided) == ("Đợt 1 năm 2026", 0, 1, 0)
        page = round_page(session, manager, line.round.id)
        assert [s.id for s in page.sessions] == [session_id]
        assert where_it_stands(session, cycle.instance_id).vi.startswith("Hội đồng cấp tỉnh đang xét — Đợt 1")
