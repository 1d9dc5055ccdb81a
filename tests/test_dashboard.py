"""The programme dashboard: exact figures from a known year of cycles (both
diagrams, returns, a cancelled cycle, last year's cycle, overdue work), the
CSV downloads, and who may see which province -- on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import dashboard
from engine.access import load_actor
from engine.dashboard import Audience, Filters, percentile
from engine.errors import NotAllowed
from storage.models import Jurisdiction, ProcessInstance, Producer, Product, User
from tests.cycle import Cycle, returned, sheets

YEAR = 2026
TEA = "Chè Shan tuyết Sa Pa"   # a second Lào Cai product, added here


def area(world, code: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == code))


def actor(world, username: str):
    with world.db.transaction() as session:
        return load_actor(session, session.scalar(select(User.id).where(User.username == username)))


def walk(world, cycle: Cycle, steps) -> Cycle:
    """Complete tasks in order, `days` after the previous one: (form key, days[, data])."""
    for form_key, days, *data in steps:
        world.clock.advance(days=days)
        cycle.do(form_key, *data)
    return cycle


@pytest.fixture
def year(world):
    """One known cycle year. Days spent per step (by the step of each
    completed task, from the previous completion):

    | product (area) | how far | step 2 | 3 | 4 | 5 |
    |---|---|---|---|---|---|
    | Hồ tiêu (Gio Linh) | 3 stars, promoted | 6 | 6 | 10 | 3 |
    | Gạo (Gio Linh) | idea returned once, waits at the plan review | 7 | 1 | | |
    | Tinh dầu tràm (Cam Lộ) | dossier returned once, 40 points: not recognised | 3 | 2 | 5 | 3 |
    | Mật ong (Gio Linh) | waits at the idea review | 2 | | | |
    | Rượu mận (Lào Cai, two-tier) | plan returned once, 4 stars, promoted | 3 | 5 | 3 | 4 |
    | Chè (Lào Cai, two-tier) | waits at the idea review | 1 | | | |

    Not counted in 2026: Cá khô (cancelled) and Cà phê (the 2025 cycle).
    Then 20 days pass: the three reviews waiting are overdue.
    """
    with world.db.transaction() as session:
        producer = session.scalar(select(Producer.id).where(Producer.name == "HTX Rượu mận Sa Pa"))
        session.add(Product(producer_id=producer, name=TEA, group_code="S11"))
    walk(world, Cycle(world, "Hồ tiêu Gio Linh").start(), [
        ("register_idea", 2), ("receive_idea", 1), ("review_idea", 3),
        ("submit_plan", 4), ("review_plan", 2),
        ("support_record", 5), ("submit_dossier", 5),
        ("check_dossier", 1), ("score_product", 2, sheets(55))])
    walk(world, Cycle(world, "Gạo hữu cơ Gio Mỹ").start(), [
        ("register_idea", 1), ("receive_idea", 1), ("review_idea", 1, returned("review_idea")),
        ("register_idea", 2), ("receive_idea", 1), ("review_idea", 1),
        ("submit_plan", 1)])
    walk(world, Cycle(world, "Tinh dầu tràm Cam Lộ").start(), [
        ("register_idea", 1), ("receive_idea", 1), ("review_idea", 1),
        ("submit_plan", 1), ("review_plan", 1),
        ("support_record", 1), ("submit_dossier", 1),
        ("check_dossier", 1, returned("check_dossier")), ("submit_dossier", 3),
        ("check_dossier", 1), ("score_product", 1, sheets(40))])
    walk(world, Cycle(world, "Mật ong rừng Gio Sơn").start(), [("register_idea", 1), ("receive_idea", 1)])
    walk(world, Cycle(world, "Rượu mận Sa Pa").start(), [
        ("register_idea", 1), ("review_idea", 2),
        ("submit_plan", 1), ("review_plan", 1, returned("review_plan")), ("submit_plan", 2), ("review_plan", 1),
        ("support_record", 1), ("submit_dossier", 2),
        ("commune_assessment", 1), ("advisory_review", 1), ("score_product", 2, sheets(80))])
    walk(world, Cycle(world, TEA).start(), [("register_idea", 1)])
    cancelled = walk(world, Cycle(world, "Cá khô Trung Giang").start(), [("register_idea", 1)])
    world.cancel(cancelled.instance_id, actor(world, "qlct.qt"), "Đăng ký nhầm")
    last_year = Cycle(world, "Cà phê rang xay Cam Hiếu")
    last_year.last = world.start_product(last_year.product_id, last_year.owner, year=YEAR - 1)
    last_year.instance_id = last_year.last.instance_id
    world.clock.advance(days=20)
    return world


def figures(world, provinces=None, year=YEAR):
    with world.db.transaction() as session:
        return dashboard.dashboard(session, Filters(year, provinces), world.clock())


# --- the figures -----------------------------------------------------------------

def test_percentile_interpolates_between_the_nearest_ranks():
    assert percentile([], 50) is None
    assert percentile([4.0], 90) == 4.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([3, 1, 2], 50) == 2          # unsorted input
    assert percentile(list(range(1, 11)), 90) == pytest.approx(9.1)
    assert percentile([1, 2, 3, 3, 6, 7], 90) == pytest.approx(6.5)
    assert percentile([5, 10], 0) == 5 and percentile([5, 10], 100) == 10
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_funnel_by_province_and_district(year):
    funnel = figures(year).funnel
    assert funnel.total == {"registered": 6, "idea_accepted": 4, "plan_accepted": 3,
                            "dossier_submitted": 3, "ranked": 3, "promoted": 2}
    rows = {(row.province, row.district): list(row.counts.values()) for row in funnel.districts}
    assert rows == {("Tỉnh Quảng Trị", "Huyện Gio Linh"): [3, 2, 1, 1, 1, 1],
                    ("Tỉnh Quảng Trị", "Huyện Cam Lộ"): [1, 1, 1, 1, 1, 0],
                    # two-tier: communes directly under the province, no district
                    ("Tỉnh Lào Cai", None): [2, 1, 1, 1, 1, 1]}
    assert [(row.province, list(row.counts.values())) for row in funnel.provinces] == [
        ("Tỉnh Lào Cai", [2, 1, 1, 1, 1, 1]), ("Tỉnh Quảng Trị", [4, 3, 2, 2, 2, 1])]


def test_a_province_filter_and_another_year(year):
    quang_tri = figures(year, (area(year, "QT"),))
    assert list(quang_tri.funnel.total.values()) == [4, 3, 2, 2, 2, 1]
    assert [row.province for row in quang_tri.funnel.provinces] == ["Tỉnh Quảng Trị"]
    assert quang_tri.stars == {"3": 1, "4": 0, "5": 0, "not_recognised": 1}
    last_year = figures(year, year=YEAR - 1)
    assert list(last_year.funnel.total.values()) == [1, 0, 0, 0, 0, 0]
    assert [(row.province, row.district) for row in last_year.funnel.districts] == [
        ("Tỉnh Quảng Trị", "Huyện Cam Lộ")]


def test_stars_and_return_rates(year):
    result = figures(year)
    assert result.stars == {"3": 1, "4": 1, "5": 0, "not_recognised": 1}
    rates = {rate.subject: (rate.step, rate.reviews, rate.returned) for rate in result.returns}
    assert rates == {"idea": (2, 5, 1), "plan": (3, 4, 1), "dossier": (4, 5, 1)}
    assert [rate.rate for rate in result.returns] == [0.2, 0.25, 0.2]


def test_time_spent_in_each_step(year):
    times = {t.step: (t.instances, t.median_days, t.p90_days) for t in figures(year).step_times}
    assert times.keys() == {2, 3, 4, 5}
    assert times[2] == (6, 3.0, pytest.approx(6.5))     # 1 2 3 3 6 7
    assert times[3] == (4, 3.5, pytest.approx(5.7))     # 1 2 5 6
    assert times[4] == (3, 5.0, pytest.approx(9.0))     # 3 5 10
    assert times[5] == (3, 3.0, pytest.approx(3.8))     # 3 3 4


def test_overdue_tasks_per_area(year):
    overdue = [(row.name, row.level, row.tasks) for row in figures(year).overdue]
    assert overdue == [("Huyện Gio Linh", "district", 2), ("Phường Sa Pa", "commune", 1)]
    lao_cai = figures(year, (area(year, "LC"),)).overdue
    assert [(row.name, row.tasks) for row in lao_cai] == [("Phường Sa Pa", 1)]
    year.clock.advance(days=-20)   # the tea's idea review has waited 2 of its 15 days then
    assert [(row.name, row.tasks) for row in figures(year).overdue] == [("Huyện Gio Linh", 2)]


def test_who_sees_which_provinces(world):
    quang_tri, lao_cai = area(world, "QT"), area(world, "LC")
    auditor = Audience.of(actor(world, "kiemtoan"))
    assert auditor.filters(YEAR) == Filters(YEAR, None)
    assert auditor.filters(YEAR, lao_cai) == Filters(YEAR, (lao_cai,))
    manager = Audience.of(actor(world, "qlct.qt"))
    assert manager.filters(YEAR) == Filters(YEAR, (quang_tri,))
    with pytest.raises(NotAllowed):
        manager.filters(YEAR, lao_cai)
    for username in ("cb.qt-gl-gm", "hd.qt", "htx.giomy"):
        assert not Audience.of(actor(world, username)).may_view
        with pytest.raises(NotAllowed):
            Audience.of(actor(world, username)).filters(YEAR)


def test_the_same_figures_from_the_events_alone(year, monkeypatch):
    """Form keys, steps and handlers come from the deployed diagrams; where
    the diagrams do not settle an element, each event's own JSON does."""
    expected = figures(year)
    dashboard._histories.clear()
    monkeypatch.setattr(dashboard, "diagram_elements", lambda session: {})
    assert figures(year) == expected


def test_a_history_is_read_again_when_it_grows(year):
    assert figures(year).funnel.total["idea_accepted"] == 4      # kept in memory now
    honey = Cycle(year, "Mật ong rừng Gio Sơn")
    with year.db.transaction() as session:
        honey.instance_id = session.scalar(select(ProcessInstance.id).where(
            ProcessInstance.product_id == honey.product_id, ProcessInstance.status == "running"))
    honey.do("review_idea")
    assert figures(year).funnel.total["idea_accepted"] == 5
