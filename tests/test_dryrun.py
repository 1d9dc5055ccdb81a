"""The dry run: a diagram through the real engine on a throwaway in-memory
database, with sample decisions that take every path of the shipped cycle."""
import io
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import diagram
from engine.dryrun import _error, dry_run, flow_nodes, profiles
from engine.errors import ProcessRefused
from testkit.web_login import login
from tests.support import runtime_diagrams
from web.cli import main

PROCESSES = Path(__file__).resolve().parents[1] / "processes"
SEED = (PROCESSES / "ocop_cycle.bpmn").read_bytes()
# Enough products (and a seed) that the shipped cycle takes every path.
PRODUCTS, RUN_SEED = 12, 1
NO_CENTRAL = SEED.replace(b"province_rank['stars'] &gt;= 5", b"province_rank['stars'] &gt;= 6")
UNDEFINED_PARAMETER = SEED.replace(b"value=\"'implementation'\"", b'value="training_topic"')
BROKEN = SEED.replace(b' default="flow_idea_return"', b"", 1)


@pytest.fixture
def db_url(tmp_path):
    """SQLite only: the endpoint test is about permissions and JSON."""
    return f"sqlite:///{tmp_path / 'ocop.db'}"


@pytest.fixture(scope="module")
def shipped_report():
    return dry_run(SEED, PRODUCTS, RUN_SEED)


def test_the_shipped_cycle_reaches_every_element(shipped_report):
    report = shipped_report
    assert report.ok, (report.unreached, report.stuck, report.errors)
    assert not report.unreached and not report.stuck and not report.errors and not report.problems
    nodes = flow_nodes(diagram.read_xml(SEED)[0])
    assert {n["process"] for n in nodes} == {diagram.PRODUCT_PROCESS, diagram.OUTREACH_PROCESS}
    assert {n["id"] for n in nodes} <= set(report.reached)
    ends = {n["id"] for n in nodes if n["type"] == "endEvent"}
    # The escalation's end closes a branch beside the task, never the instance.
    assert set(report.paths) == ends - {"end_check_dossier_escalated"}
    assert report.paths["end_dossier_expired"] == 1  # the product that missed every deadline
    assert sum(report.paths.values()) == PRODUCTS + report.paths["end_outreach"]


def test_decisions_mix_loop_limits_and_a_spread_of_scores():
    mix = profiles(30, random.Random(1))
    assert mix == profiles(30, random.Random(1))  # deterministic
    assert [p.accept_kinds for p in mix[:3]] == [0, 1, 2]
    qualities = [q for p in mix for q in p.qualities]
    assert min(qualities) == 20.0 and max(qualities) == 97.0
    assert {p.accept_rate for p in mix} >= {1.0, 0.4}


def test_an_element_unreachable_by_data_is_reported():
    assert diagram.check(NO_CENTRAL).ok
    report = dry_run(NO_CENTRAL, PRODUCTS, RUN_SEED)
    assert not report.ok and not report.errors and not report.stuck
    unreached = {n["id"]: n for n in report.unreached}
    assert unreached["task_score_central"]["name"] == "Thành viên chấm điểm sản phẩm (Hội đồng cấp Trung ương)"
    assert unreached["task_score_central"]["process"] == diagram.PRODUCT_PROCESS
    assert "task_score_province" not in unreached


def test_a_service_parameter_naming_an_undefined_variable_is_reported_with_its_element():
    assert diagram.check(UNDEFINED_PARAMETER).ok  # lint cannot know which variables exist
    report = dry_run(UNDEFINED_PARAMETER, 6, RUN_SEED)
    assert report.errors and not report.ok
    assert {e["element_id"] for e in report.errors} == {"service_training_implementation"}
    assert all("training_topic" in e["message"] for e in report.errors)
    # One bad product does not stop the others: the loop-limit ones still end.
    assert report.paths.get("end_idea_limit") == 1


def test_a_diagram_with_errors_is_not_run():
    report = dry_run(BROKEN, PRODUCTS, RUN_SEED)
    assert not report.ok and report.problems
    assert not report.reached and not report.paths and not report.profiles


def test_cli_exit_status(tmp_path):
    runner = CliRunner()
    good = tmp_path / "good.bpmn"
    good.write_bytes(SEED)
    result = runner.invoke(main, ["dryrun", str(good), "--products", str(PRODUCTS), "--seed", str(RUN_SEED)])
    assert result.exit_code == 0, result.output
    assert "end_recognised" in result.output
    broken = tmp_path / "broken.bpmn"
    broken.write_bytes(BROKEN)
    result = runner.invoke(main, ["dryrun", str(broken), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["problems"]
    bad = tmp_path / "bad.bpmn"
    bad.write_bytes(UNDEFINED_PARAMETER)
    result = runner.invoke(main, ["dryrun", str(bad), "--products", "3", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["errors"][0]["element_id"] == "service_training_implementation"


def test_endpoint_for_program_managers_only(app):
    client = app.test_client()
    token = login(client, "cb.qt-gl")  # a district officer
    response = client.post("/definitions/dryrun", data=SEED, content_type="application/xml",
                           headers={"X-CSRFToken": token})
    assert response.status_code == 403
    client = app.test_client()
    token = login(client, "qlct.qt")
    response = client.post("/definitions/dryrun?products=3",
                           data={"csrf_token": token, "file": (io.BytesIO(NO_CENTRAL), "diagram.bpmn")},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is False and body["products"] == 3
    assert "task_score_central" in {n["id"] for n in body["unreached"]}
    response = client.post("/definitions/dryrun", data=BROKEN, content_type="application/xml",
                           headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.get_json()["problems"]


@pytest.mark.parametrize("name, element, kind", [
    ("SCRIPT_LOOP", "script_idea_return", "LoopNeverEnds"),
    ("GATEWAY_LOOP", "gw_spin", "LoopNeverEnds"),
    ("BAD_TIMER", "timer_check_dossier_late", "TimerFailed"),
    ("UNDEFINED_IN_GATEWAY", "gw_idea_limit", "GatewayFailed"),
])
def test_each_failure_is_labelled_by_what_failed_and_where(name, element, kind):
    report = dry_run(getattr(runtime_diagrams, name).encode(), 6, RUN_SEED)
    assert not report.ok and report.errors
    error = report.errors[0]
    assert (error["element_id"], error["error"]) == (element, kind)
    assert error["message"].split(" / ")[0].split(" (")[0] != error["message"]  # Vietnamese first
    if name == "UNDEFINED_IN_GATEWAY":
        assert "biến 'max_resubmission' chưa được định nghĩa" in error["message"]


def test_a_start_that_fails_without_an_element_is_placed_at_the_start_event():
    nodes = {"start_product_cycle": {"id": "start_product_cycle", "name": "Bắt đầu", "type": "startEvent"}}
    error = _error(ProcessRefused("refused"), 1, diagram.PRODUCT_PROCESS, "start_product_cycle", nodes)
    assert (error["element_id"], error["error"]) == ("start_product_cycle", "StartFailed")
    assert error["message"].startswith("Không bắt đầu được quy trình 'Bắt đầu' (start_product_cycle)")
