"""The programme dashboard: exact figures from a known year of cycles (both
diagrams, returns, a cancelled cycle, last year's cycle, overdue work), the
CSV downloads, and who may see which province -- on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import io
import os

import pytest
from sqlalchemy import select

from engine.access import load_actor
from engine.errors import NotAllowed
from programme import dashboard
from programme.dashboard import Audience, Filters, percentile
from storage.models import Jurisdiction, ProcessInstance, Producer, Product, User
from testkit.cycle import Cycle, returned, sheets
from testkit.web_login import login
from tests.support.browser import ARTIFACTS
from tests.support.web_helpers import sign_in_browser

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


# --- the pages and their CSV -----------------------------------------------------------

def get(client, url: str, status: int = 200):
    response = client.get(url)
    assert response.status_code == status, f"{url}: {response.status_code}"
    return response


def read_csv(response) -> list[list[str]]:
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode("utf-8")), "UTF-8 with a byte order mark, for Excel"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_the_auditor_sees_every_province_as_charts_and_tables(year, client):
    login(client, "kiemtoan")
    html = get(client, "/dashboard/").get_data(as_text=True)
    assert 'href="/dashboard/"' in html                              # the nav link
    assert "Tỉnh Quảng Trị" in html and "Tỉnh Lào Cai" in html and "Huyện Gio Linh" in html
    assert "Xã trực thuộc tỉnh (không có cấp huyện)" in html
    assert html.count("<svg") == 5 and "<script" not in html and "style=" not in html
    assert '<g class="bar ">' in html and "<title>Ý tưởng đã đăng ký: 6</title>" in html
    assert "<title>Ý tưởng được chấp nhận: 4 (67%)</title>" in html
    assert "<title>Ý tưởng sản phẩm: 20,0% (1/5)</title>" in html
    assert "<title>Bước 2: phân vị 90: 6,5 ngày</title>" in html
    assert "<title>Huyện Gio Linh: 2</title>" in html
    assert '<option value="2026" selected>' in html and '<option value="2025">' in html


def test_csv_downloads_carry_the_same_numbers(year, client):
    login(client, "kiemtoan")
    funnel = get(client, "/dashboard/funnel.csv?year=2026")
    assert funnel.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert funnel.headers["Content-Disposition"] == 'attachment; filename="ocop-funnel-2026.csv"'
    assert read_csv(funnel) == [
        ["Tỉnh", "Huyện", "Ý tưởng đã đăng ký", "Ý tưởng được chấp nhận", "Phương án được chấp nhận",
         "Hồ sơ sản phẩm đã nộp", "Đã đánh giá, xếp hạng", "Đưa vào xúc tiến thương mại"],
        ["Tỉnh Lào Cai", "Cả tỉnh", "2", "1", "1", "1", "1", "1"],
        ["Tỉnh Lào Cai", "Xã trực thuộc tỉnh (không có cấp huyện)", "2", "1", "1", "1", "1", "1"],
        ["Tỉnh Quảng Trị", "Cả tỉnh", "4", "3", "2", "2", "2", "1"],
        ["Tỉnh Quảng Trị", "Huyện Cam Lộ", "1", "1", "1", "1", "1", "0"],
        ["Tỉnh Quảng Trị", "Huyện Gio Linh", "3", "2", "1", "1", "1", "1"],
        ["Tổng cộng", "", "6", "4", "3", "3", "3", "2"]]
    assert read_csv(get(client, "/dashboard/stars.csv")) == [
        ["Hạng", "Số sản phẩm"], ["3 sao", "1"], ["4 sao", "1"], ["5 sao", "0"], ["Không được công nhận", "1"]]
    assert read_csv(get(client, "/dashboard/returns.csv")) == [
        ["Hồ sơ được đánh giá", "Bước", "Số lượt đánh giá", "Số lượt trả lại", "Tỷ lệ trả lại (%)"],
        ["Ý tưởng sản phẩm", "2", "5", "1", "20.0"], ["Phương án sản xuất kinh doanh", "3", "4", "1", "25.0"],
        ["Hồ sơ sản phẩm", "4", "5", "1", "20.0"]]
    assert read_csv(get(client, "/dashboard/step-times.csv"))[1:] == [
        ["2", "Đăng ký ý tưởng sản phẩm", "6", "3.00", "6.50"], ["3", "Phương án sản xuất kinh doanh", "4", "3.50", "5.70"],
        ["4", "Triển khai phương án", "3", "5.00", "9.00"], ["5", "Đánh giá và xếp hạng", "3", "3.00", "3.80"]]
    lao_cai = area(year, "LC")
    overdue = get(client, f"/dashboard/overdue.csv?year=2026&province={lao_cai}")
    assert overdue.headers["Content-Disposition"] == f'attachment; filename="ocop-overdue-2026-p{lao_cai}.csv"'
    assert read_csv(overdue) == [["Địa bàn", "Cấp", "Số việc quá hạn"], ["Phường Sa Pa", "Xã", "1"]]
    last_year = read_csv(get(client, "/dashboard/funnel.csv?year=2025"))
    assert last_year[-1] == ["Tổng cộng", "", "1", "0", "0", "0", "0", "0"]


def test_a_program_manager_sees_only_their_province(year, client):
    login(client, "qlct.qt")
    html = get(client, "/dashboard/").get_data(as_text=True)
    assert "Tỉnh Quảng Trị" in html and "Huyện Gio Linh" in html
    assert "Lào Cai" not in html and "Sa Pa" not in html
    assert "<title>Ý tưởng đã đăng ký: 4</title>" in html
    assert read_csv(get(client, "/dashboard/stars.csv")) == [
        ["Hạng", "Số sản phẩm"], ["3 sao", "1"], ["4 sao", "0"], ["5 sao", "0"], ["Không được công nhận", "1"]]
    funnel = read_csv(get(client, "/dashboard/funnel.csv"))
    assert [row[0] for row in funnel[1:]] == ["Tỉnh Quảng Trị"] * 3 + ["Tổng cộng"]
    assert read_csv(get(client, "/dashboard/overdue.csv"))[1:] == [["Huyện Gio Linh", "Huyện", "2"]]


def test_a_forged_province_is_refused_on_the_page_and_every_csv(year, client):
    login(client, "qlct.lc")
    quang_tri, lao_cai = area(year, "QT"), area(year, "LC")
    assert "Tỉnh Lào Cai" in get(client, f"/dashboard/?province={lao_cai}").get_data(as_text=True)
    for path in ("/dashboard/", "/dashboard/funnel.csv", "/dashboard/stars.csv", "/dashboard/returns.csv",
                 "/dashboard/step-times.csv", "/dashboard/overdue.csv"):
        response = get(client, f"{path}?year=2026&province={quang_tri}", 403)
        assert "Quảng Trị" not in response.get_data(as_text=True)


def test_others_are_refused_and_visitors_sent_to_sign_in(world, app):
    visitor = app.test_client()
    response = get(visitor, "/dashboard/funnel.csv", 302)
    assert "/login" in response.headers["Location"]
    for username in ("cb.qt-gl-gm", "hd.qt", "htx.giomy"):
        client = app.test_client()
        login(client, username)
        get(client, "/dashboard/", 403)
        get(client, "/dashboard/stars.csv", 403)
        assert 'href="/dashboard/"' not in get(client, "/catalogue").get_data(as_text=True)


def test_the_page_in_english(year, client):
    login(client, "qlct.qt")
    html = get(client, "/dashboard/?lang=en").get_data(as_text=True)
    assert "Ideas registered" in html and "Ý tưởng đã đăng ký" not in html


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_browser_dashboard(year, page):
    sign_in_browser(page, "kiemtoan")
    page.click("a[data-nav=dashboard]")
    page.wait_for_selector("#funnel-chart")
    assert page.locator("#funnel-chart g.bar").count() == 6
    assert page.locator("svg.chart").count() == 5
    page.select_option("select[name=province]", label="Tỉnh Quảng Trị")
    page.locator("form.filters button").click()
    page.wait_for_load_state()
    assert "Lào Cai" not in page.locator("#funnel").inner_text()
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "dashboard.png"), full_page=True)
