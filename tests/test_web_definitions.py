"""The diagram versions page: who may see and change which scope, the
validate endpoint, deploying a province's variant, activation, download,
and the append-only admin log."""
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from engine.access import SYSTEM_ACTOR
from engine.errors import DiagramError
from programme import definitions as defs
from storage.models import AdminLogEntry, Jurisdiction, ProcessDefinition
from testkit.web_login import login
from tests.support.runtime_diagrams import BAD_TIMER, SCRIPT_LOOP, UNDEFINED_IN_GATEWAY

PROCESSES = Path(__file__).resolve().parents[1] / "processes"
SEED = (PROCESSES / "ocop_cycle.bpmn").read_bytes()
CHANGED = SEED.replace("Đăng ký ý tưởng sản phẩm".encode(), "Đăng ký ý tưởng".encode(), 1)
BROKEN = SEED.replace(b' default="flow_idea_return"', b"", 1)


def area_id(world, code: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == code))


def count(world, model) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def upload(token: str, xml: bytes, name="ocop_cycle", province_id="", message="", **extra) -> dict:
    return {"csrf_token": token, "file": (io.BytesIO(xml), "diagram.bpmn"), "name": name,
            "province_id": str(province_id), "message": message, **extra}


def test_only_program_managers_and_admins_come_in(client):
    assert client.get("/definitions/").status_code == 302  # to the sign-in page
    token = login(client, "cb.qt-gl")
    assert "/definitions/" not in client.get("/inbox/").get_data(as_text=True)
    assert client.get("/definitions/").status_code == 403
    assert client.post("/definitions/validate", data=SEED, content_type="application/xml",
                       headers={"X-CSRFToken": token}).status_code == 403
    assert client.get("/definitions/1.bpmn").status_code == 403


def test_program_manager_sees_every_version(client):
    login(client, "qlct.qt")
    page = client.get("/definitions/").get_data(as_text=True)
    assert 'href="/definitions/"' in page  # the nav link
    assert "ocop_cycle_two_tier" in page and "Tỉnh Lào Cai" in page and "Toàn quốc" in page


def test_a_province_manager_cannot_change_another_province_nor_the_nation(world, client):
    token = login(client, "qlct.lc")
    before = count(world, ProcessDefinition)
    response = client.post("/definitions/deploy", data=upload(token, CHANGED, province_id=area_id(world, "QT")),
                           content_type="multipart/form-data")
    assert response.status_code == 403
    response = client.post("/definitions/deploy", data=upload(token, CHANGED), content_type="multipart/form-data")
    assert response.status_code == 403
    with world.db.transaction() as session:
        national = session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.province_id.is_(None)))
    assert client.post(f"/definitions/{national}/activate", data={"csrf_token": token}).status_code == 403
    assert (count(world, ProcessDefinition), count(world, AdminLogEntry)) == (before, 0)


def test_validate_answers_json_for_a_good_and_a_broken_diagram(client):
    token = login(client, "qlct.qt")
    good = client.post("/definitions/validate", data=SEED, content_type="application/xml",
                       headers={"X-CSRFToken": token})
    assert good.status_code == 200
    assert good.get_json() == {"ok": True, "errors": [], "warnings": []}
    broken = client.post("/definitions/validate", data={"csrf_token": token,
                                                        "file": (io.BytesIO(BROKEN), "broken.bpmn")},
                         content_type="multipart/form-data")
    answer = broken.get_json()
    assert answer["ok"] is False and answer["warnings"] == []
    problem = next(p for p in answer["errors"] if p["element_id"] == "gw_idea_decision")
    assert "no default flow" in problem["message_en"] and "luồng mặc định" in problem["message"]
    assert isinstance(problem["line"], int) and problem["layer"] == "lint"
    # Without the CSRF token the POST is refused.
    assert client.post("/definitions/validate", data=SEED, content_type="application/xml").status_code == 400


def test_a_broken_diagram_is_listed_and_not_stored(world, client):
    token = login(client, "qlct.qt")
    before = count(world, ProcessDefinition)
    response = client.post("/definitions/deploy", data=upload(token, BROKEN, province_id=area_id(world, "QT")),
                           content_type="multipart/form-data")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "gw_idea_decision" in page and "không có luồng mặc định" in page
    as_json = client.post("/definitions/deploy", data=upload(token, BROKEN, province_id=area_id(world, "QT")),
                          content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert as_json.status_code == 422 and as_json.get_json()["errors"]
    assert (count(world, ProcessDefinition), count(world, AdminLogEntry)) == (before, 0)


def test_check_only_stores_nothing(world, client):
    token = login(client, "qlct.qt")
    response = client.post("/definitions/deploy", data=upload(token, CHANGED, check_only="1"),
                           content_type="multipart/form-data")
    assert response.status_code == 200 and "Sơ đồ hợp lệ" in response.get_data(as_text=True)
    assert count(world, AdminLogEntry) == 0


def test_province_manager_deploys_a_variant_for_the_province(world, client):
    quang_tri = area_id(world, "QT")
    with world.db.transaction() as session:
        latest = session.scalar(select(func.max(ProcessDefinition.version))
                                .where(ProcessDefinition.name == "ocop_cycle"))
    token = login(client, "qlct.qt")
    response = client.post("/definitions/deploy",
                           data=upload(token, CHANGED, province_id=quang_tri, message="Rút gọn tên bước"),
                           content_type="multipart/form-data")
    assert response.status_code == 302
    with world.db.transaction() as session:
        variant = world.active_definition(session, quang_tri)
        assert (variant.name, variant.version, variant.province_id) == ("ocop_cycle", latest + 1, quang_tri)
        assert variant.author == "Quản lý chương trình Tỉnh Quảng Trị"
        national = world.active_definition(session, None)  # the national version stays active
        assert national.province_id is None and national.version == latest
        entries = session.scalars(select(AdminLogEntry)).all()
        assert [(e.action, e.definition_id, e.definition_version, e.province_id, e.message) for e in entries] == \
            [("deploy", variant.id, latest + 1, quang_tri, "Rút gọn tên bước")]
        assert entries[0].actor_name == "Quản lý chương trình Tỉnh Quảng Trị" and entries[0].at
    page = client.get("/definitions/").get_data(as_text=True)
    assert "Rút gọn tên bước" in page and "Tỉnh Quảng Trị" in page

    # The same bytes again: no new version, the log says so.
    stored = count(world, ProcessDefinition)
    client.post("/definitions/deploy", data=upload(token, CHANGED, province_id=quang_tri),
                content_type="multipart/form-data")
    assert count(world, ProcessDefinition) == stored

    # Download gives back exactly what was deployed.
    download = client.get(f"/definitions/{variant.id}.bpmn")
    assert download.status_code == 200 and download.mimetype == "application/xml"
    assert download.headers["Content-Disposition"] == f'attachment; filename="ocop_cycle-v{latest + 1}.bpmn"'
    assert download.data == CHANGED
    assert client.get("/definitions/9999.bpmn").status_code == 404

    # An administrator rolls the national diagram forward and back.
    client.post("/logout", data={"csrf_token": token})
    token = login(client, "admin")
    response = client.post("/definitions/deploy", data=upload(token, CHANGED, message="national"),
                           content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert response.status_code == 201 and response.get_json()["version"] == latest + 2
    assert client.post(f"/definitions/{national.id}/activate", data={"csrf_token": token}).status_code == 302
    with world.db.transaction() as session:
        assert world.active_definition(session, None).id == national.id
        actions = session.scalars(select(AdminLogEntry.action).order_by(AdminLogEntry.id)).all()
    assert actions == ["deploy", "redeploy", "deploy", "activate"]


def test_the_database_refuses_to_change_the_admin_log(world, client):
    token = login(client, "qlct.qt")
    client.post("/definitions/deploy", data=upload(token, CHANGED, province_id=area_id(world, "QT")),
                content_type="multipart/form-data")
    for statement in ("UPDATE admin_log SET message = 'x'", "DELETE FROM admin_log"):
        with pytest.raises(DBAPIError, match="append-only"), world.db.transaction() as session:
            session.execute(text(statement))
    assert count(world, AdminLogEntry) == 1


def test_a_diagram_whose_dry_run_fails_is_not_deployed(world, client):
    """It validates; its dry run loops past the step budget: refused with
    the element, nothing stored (the kernel's deploy would take it)."""
    token = login(client, "admin")
    before = count(world, ProcessDefinition)
    response = client.post("/definitions/deploy", data=upload(token, SCRIPT_LOOP.encode()),
                           content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert any(e["element_id"] == "script_idea_return" and "LoopNeverEnds" in e["message"] for e in errors), errors
    assert (count(world, ProcessDefinition), count(world, AdminLogEntry)) == (before, 0)


@pytest.mark.parametrize("xml", [BAD_TIMER, UNDEFINED_IN_GATEWAY], ids=["bad-timer", "undefined-variable"])
def test_the_use_case_refuses_what_the_dry_run_finds(world, xml):
    with pytest.raises(DiagramError) as refused:
        defs.deploy(world, SYSTEM_ACTOR, xml, "ocop_cycle")
    assert refused.value.problems and all(p.layer == "dryrun" for p in refused.value.problems)


def test_activating_a_version_whose_dry_run_fails_is_refused(world, client):
    stored = world.deploy(SCRIPT_LOOP.encode(), "ocop_cycle", "tester", "through the kernel", activate=False)
    token = login(client, "admin")
    response = client.post(f"/definitions/{stored.id}/activate", data={"csrf_token": token})
    assert response.status_code == 422
    assert "script_idea_return" in response.get_data(as_text=True)
    with world.db.transaction() as session:
        assert not session.get(ProcessDefinition, stored.id).is_active
