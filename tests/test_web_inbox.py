"""The officers' inbox: who sees which tasks, filters, counts, due dates,
claims and reassignment -- through the web pages, on both databases."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

import programme.inbox
from engine.errors import ConcurrencyConflict
from storage.models import Producer, Product
from testkit.cycle import Cycle
from testkit.web_login import login
from tests.support.inbox_world import HONEY, PEPPER, RICE, add_officer, area_id, assignee, at_review_idea, user_id

# --- reading the inbox page ---------------------------------------------------

def listed(html: str) -> list[str]:
    """Task ids of the inbox rows, in order."""
    return re.findall(r'<tr class="[^"]*" data-task="([^"]+)"', html)


def quick_counts(html: str) -> dict[str, int]:
    return {name: int(n) for name, n in re.findall(r'data-count="(\w+)">(\d+)<', html)}


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


# --- who sees what ------------------------------------------------------------

def test_inbox_shows_only_the_tasks_of_the_users_area_and_role(world, client):
    pepper = at_review_idea(world, PEPPER)
    task = pepper.task("review_idea")
    login(client, "cb.qt-gl")
    html = page(client, "/inbox/")
    assert listed(html) == [task.id]
    assert PEPPER in html and "HTX Nông nghiệp Gio Mỹ" in html and "Xã Gio Mỹ" in html
    assert "Đánh giá ý tưởng sản phẩm" in html and f'href="/inbox/tasks/{task.id}"' in html

    for other in ("cb.qt-cl", "cb.qt-gl-gm", "hd.qt-gl", "hd.qt", "htx.giomy"):
        login(client, other)
        assert listed(page(client, "/inbox/")) == [], other


def test_an_auditor_has_no_inbox_and_strangers_must_sign_in(world, client):
    assert client.get("/inbox/").status_code == 302
    login(client, "kiemtoan")
    response = client.get("/inbox/")
    assert response.status_code == 403 and "không có hộp việc" in response.get_data(as_text=True)


def test_filters_sorting_and_counts(world, client):
    pepper = at_review_idea(world, PEPPER)
    honey = at_review_idea(world, HONEY)
    rice = at_review_idea(world, RICE)
    rice.do("review_idea")
    rice.do("submit_plan")  # rice waits at review_plan (step 3)
    login(client, "cb.qt-gl")

    everything = page(client, "/inbox/")
    assert len(listed(everything)) == 3
    assert quick_counts(everything) == {"area": 3, "mine": 0, "unassigned": 3, "overdue": 0, "due_soon": 0}

    assert listed(page(client, "/inbox/?step=3")) == [rice.task("review_plan").id]
    assert set(listed(page(client, "/inbox/?task=review_idea"))) == {
        pepper.task("review_idea").id, honey.task("review_idea").id}
    assert listed(page(client, f"/inbox/?commune={area_id(world, 'QT-GL-GS')}")) == [honey.task("review_idea").id]
    assert listed(page(client, "/inbox/?group=S04")) == [honey.task("review_idea").id]
    by_name = listed(page(client, "/inbox/?sort=product"))
    assert by_name == [rice.task("review_plan").id, pepper.task("review_idea").id, honey.task("review_idea").id]
    # Nonsense in a choice of the query string means "no filter"; a number
    # that is not one is a 400 (tests/test_web_query_numbers.py).
    assert len(listed(page(client, "/inbox/?task=drop&group=S99&scope=all&sort=evil"))) == 3
    # The filter form keeps its values (a shareable URL re-opens the same view).
    filtered = page(client, "/inbox/?step=3&sort=due")
    assert '<option value="3" selected>' in filtered and '<option value="due" selected>' in filtered

    client.post(f"/inbox/tasks/{honey.task('review_idea').id}/claim",
                data={"csrf_token": login(client, "cb.qt-gl")})
    assert listed(page(client, "/inbox/?scope=mine")) == [honey.task("review_idea").id]
    assert len(listed(page(client, "/inbox/?scope=unassigned"))) == 2
    assert quick_counts(page(client, "/inbox/"))["mine"] == 1


def next_link(html: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', html)
    return found[1].replace("&amp;", "&") if found else None


def test_pagination(world, client, monkeypatch):
    for product in (PEPPER, HONEY, RICE):
        at_review_idea(world, product)
    monkeypatch.setattr(programme.inbox, "PAGE_SIZE", 2)
    login(client, "cb.qt-gl")
    first = page(client, "/inbox/?sort=product&scope=unassigned")
    following = next_link(first)
    assert "sort=product" in following and "scope=unassigned" in following  # the link keeps the filters
    second = page(client, following)
    assert len(listed(first)) == 2 and len(listed(second)) == 1
    assert not set(listed(first)) & set(listed(second))
    assert next_link(second) is None and 'rel="first"' in second and 'rel="first"' not in first
    bad = client.get("/inbox/?after=not-a-cursor")
    assert bad.status_code == 400 and "Liên kết trang của hộp việc không hợp lệ" in bad.get_data(as_text=True)


def products_at_review_idea(world, count: int) -> list[Cycle]:
    """`count` new products of the Gio Mỹ cooperative at the district's review of their idea."""
    with world.db.transaction() as session:
        producer = session.scalar(select(Producer).where(Producer.name == "HTX Nông nghiệp Gio Mỹ"))
        names = [f"Sản phẩm trang {n:02d}" for n in range(count)]
        session.add_all(Product(producer_id=producer.id, name=name, group_code="S10") for name in names)
    cycles = []
    for n, name in enumerate(names):
        cycles.append(at_review_idea(world, name))
        world.clock.advance(minutes=1 + n % 2)  # some tasks share their creation time, some not
    return cycles


@pytest.mark.parametrize("who", ["cb.qt-gl", "qlct.qt"])  # an officer; a supervisor (its own page query)
@pytest.mark.parametrize("sort", ["waiting", "due", "product"])
def test_keyset_pages_skip_and_repeat_nothing_while_tasks_are_completed(world, client, monkeypatch, sort, who):
    """Walking the pages while colleagues complete tasks between two page
    loads (one already listed, one not yet): every task still waiting is
    listed exactly once (an offset would skip the one after the page's end)."""
    cycles = products_at_review_idea(world, 9)
    monkeypatch.setattr(programme.inbox, "PAGE_SIZE", 2)
    login(client, who)
    waiting = {cycle.task("review_idea").id: cycle for cycle in cycles}
    seen: list[str] = []
    url, completed = f"/inbox/?sort={sort}", set()
    while url:
        html = page(client, url)
        seen += listed(html)
        url = next_link(html)
        for task_id in ([seen[-1]] if seen else []) + [t for t in waiting if t not in seen][:1]:
            if task_id in waiting and task_id not in completed:  # a colleague completes it meanwhile
                waiting[task_id].do("review_idea")
                completed.add(task_id)
    assert len(seen) == len(set(seen)), "a task was listed twice"
    assert set(waiting) - completed <= set(seen), "a task still waiting was skipped"
    assert completed - set(seen), "the test completed a task before it was listed"


def test_overdue_and_due_soon_rows_stand_out(world, client):
    cycle = at_review_idea(world, PEPPER)  # review_idea is due in 15 days
    task_id = cycle.task("review_idea").id
    login(client, "cb.qt-gl")
    assert f'<tr class="" data-task="{task_id}"' in page(client, "/inbox/")

    world.clock.advance(days=13)
    html = page(client, "/inbox/")
    assert f'<tr class="due-soon" data-task="{task_id}"' in html
    assert quick_counts(html)["due_soon"] == 1

    world.clock.advance(days=3)
    html = page(client, "/inbox/")
    assert f'<tr class="overdue" data-task="{task_id}"' in html and "Quá hạn</span>" in html
    assert quick_counts(html)["overdue"] == 1
    assert listed(page(client, "/inbox/?overdue=1")) == [task_id]


# --- claims ---------------------------------------------------------------------

def test_claim_and_unclaim(world, client):
    add_officer(world, "cb.qt-gl.2", "district_officer", "QT-GL")
    task_id = at_review_idea(world, PEPPER).task("review_idea").id
    token = login(client, "cb.qt-gl")
    response = client.post(f"/inbox/tasks/{task_id}/claim", data={"csrf_token": token, "next": "/inbox/?sort=due"})
    assert response.status_code == 302 and response.headers["Location"] == "/inbox/?sort=due"
    assert assignee(world, task_id) == user_id(world, "cb.qt-gl")
    html = page(client, "/inbox/")
    assert "Cán bộ OCOP Huyện Gio Linh</td>" in html and "Trả việc" in html

    # A colleague cannot take it, nor give it back in the owner's place.
    token = login(client, "cb.qt-gl.2")
    response = client.post(f"/inbox/tasks/{task_id}/claim", data={"csrf_token": token}, follow_redirects=True)
    assert "Việc này đã có người khác nhận." in response.get_data(as_text=True)
    assert client.post(f"/inbox/tasks/{task_id}/unclaim", data={"csrf_token": token}).status_code == 403
    assert assignee(world, task_id) == user_id(world, "cb.qt-gl")

    token = login(client, "cb.qt-gl")
    assert client.post(f"/inbox/tasks/{task_id}/unclaim", data={"csrf_token": token}).status_code == 302
    assert assignee(world, task_id) is None


def test_claims_outside_ones_area_are_refused(world, client):
    task_id = at_review_idea(world, PEPPER).task("review_idea").id
    token = login(client, "cb.qt-gl-gm")  # the product's commune: reads the record, may not act here
    response = client.post(f"/inbox/tasks/{task_id}/claim", data={"csrf_token": token})
    assert response.status_code == 403 and "không có quyền" in response.get_data(as_text=True)
    client.post("/logout", data={"csrf_token": token})
    token = login(client, "cb.qt-cl")  # another district: the task is as unknown as a missing one
    response = client.post(f"/inbox/tasks/{task_id}/claim", data={"csrf_token": token})
    assert response.status_code == 404 and "không có quyền" not in response.get_data(as_text=True)
    assert client.post("/inbox/tasks/no-such-task/claim", data={"csrf_token": token}).status_code == 404
    assert assignee(world, task_id) is None


def test_a_next_url_to_another_host_is_ignored(world, client):
    task_id = at_review_idea(world, PEPPER).task("review_idea").id
    token = login(client, "cb.qt-gl")
    response = client.post(f"/inbox/tasks/{task_id}/claim",
                           data={"csrf_token": token, "next": "//evil.example/inbox/"})
    assert response.headers["Location"] == "/inbox/"


def test_a_supervisor_reassigns_within_the_area(world, client):
    add_officer(world, "cb.qt-gl.2", "district_officer", "QT-GL")
    task_id = at_review_idea(world, PEPPER).task("review_idea").id
    token = login(client, "qlct.qt")
    html = page(client, "/inbox/")
    assert listed(html) == [task_id]  # the province's tasks, though not its role
    assert f'action="/inbox/tasks/{task_id}/reassign"' in html and 'value="cb.qt-gl.2"' in html
    assert f'href="/inbox/tasks/{task_id}"' not in html  # it cannot complete the task itself

    response = client.post(f"/inbox/tasks/{task_id}/reassign", data={"csrf_token": token, "username": "cb.qt-gl.2"})
    assert response.status_code == 302
    assert assignee(world, task_id) == user_id(world, "cb.qt-gl.2")

    # Not to someone without the task's role in the area; not to nobody.
    assert client.post(f"/inbox/tasks/{task_id}/reassign",
                       data={"csrf_token": token, "username": "cb.qt-cl"}).status_code == 403
    response = client.post(f"/inbox/tasks/{task_id}/reassign",
                           data={"csrf_token": token, "username": "ghost"}, follow_redirects=True)
    assert "Không tìm thấy người dùng được giao." in response.get_data(as_text=True)
    # A supervisor may also release the task.
    assert client.post(f"/inbox/tasks/{task_id}/unclaim", data={"csrf_token": token}).status_code == 302
    assert assignee(world, task_id) is None


def test_only_a_supervisor_of_the_area_reassigns(world, client):
    add_officer(world, "cb.qt-gl.2", "district_officer", "QT-GL")
    task_id = at_review_idea(world, PEPPER).task("review_idea").id
    # 403 in the product's own area; 404 for another province (its task is as unknown as a missing one).
    for username, status in (("cb.qt-gl", 403), ("qlct.lc", 404)):
        token = login(client, username)
        response = client.post(f"/inbox/tasks/{task_id}/reassign",
                               data={"csrf_token": token, "username": "cb.qt-gl.2"})
        assert response.status_code == status, username
    assert listed(page(client, "/inbox/")) == []  # Lào Cai's manager sees nothing of Quảng Trị
    assert assignee(world, task_id) is None


def test_a_concurrent_change_answers_409(world, client, app, monkeypatch):
    task_id = at_review_idea(world, PEPPER).task("review_idea").id
    token = login(client, "cb.qt-gl")

    def conflict(*args, **kwargs):
        raise ConcurrencyConflict(1)
    monkeypatch.setattr(app.extensions["ocop_engine"], "claim", conflict)
    response = client.post(f"/inbox/tasks/{task_id}/claim", data={"csrf_token": token})
    assert response.status_code == 409 and "tải lại trang" in response.get_data(as_text=True)


def test_posts_without_the_csrf_token_are_refused(world, client):
    task_id = at_review_idea(world, PEPPER).task("review_idea").id
    login(client, "cb.qt-gl")
    for action in ("claim", "unclaim", "reassign"):
        assert client.post(f"/inbox/tasks/{task_id}/{action}", data={"username": "cb.qt-gl"}).status_code == 400
    assert assignee(world, task_id) is None


def test_inbox_markup_is_safe_for_the_csp(world, client):
    at_review_idea(world, PEPPER)
    login(client, "cb.qt-gl")
    html = page(client, "/inbox/")
    assert "<script" not in html and "style=" not in html and " on" + "click" not in html
    assert html.count('name="csrf_token"') >= 2  # logout and the claim form
    assert 'class="responsive inbox-table"' in html


def test_filters_past_any_id_are_refused(client):
    """A commune or step past any id (or not a number) is a 400 saying what
    is expected, never a 500 (PostgreSQL refuses integers past 32 bits)."""
    login(client, "cb.qt-gl")
    for query in ("commune=99999999999999999999", "step=99999999999999999999", "commune=²", "step=-3"):
        response = client.get(f"/inbox/?{query}")
        assert response.status_code == 400 and "phải là số nguyên" in response.get_data(as_text=True), query
