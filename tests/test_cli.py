"""The `ocop` command line, on SQLite and PostgreSQL."""
import json
from pathlib import Path

from click.testing import CliRunner

from web.cli import main

PROCESSES = Path(__file__).resolve().parents[1] / "processes"


def run(db_url, *args):
    result = CliRunner().invoke(main, list(args), env={"OCOP_DATABASE_URL": db_url},
                                catch_exceptions=False)
    return result


def test_init_then_simulate(db_url):
    assert run(db_url, "init").exit_code == 0
    assert run(db_url, "init").exit_code == 0  # a second init changes nothing and does not fail
    status = run(db_url, "status")
    assert "ocop_product_cycle" in status.output and "district_officer" in status.output

    result = run(db_url, "simulate", "--products", "12", "--seed", "7", "--json")
    assert result.exit_code == 0, result.output
    funnel = json.loads(result.output)
    assert funnel["products"] == 12
    reached = funnel["reached_step"]
    assert reached["2"] == 12 and reached["2"] >= reached["3"] >= reached["4"] >= reached["5"] >= reached["6"]
    assert sum(funnel["ended_at"].values()) == 12
    assert sum(funnel["stars"].values()) == funnel["ended_at"].get("end_recognised", 0) == reached["6"]

    again = run(db_url, "simulate", "--products", "12", "--seed", "7", "--json")
    same = json.loads(again.output)
    assert {k: v for k, v in same.items() if k != "seconds"} == {k: v for k, v in funnel.items() if k != "seconds"}


def test_validate_reports_problems_and_exit_status(tmp_path):
    good = str(PROCESSES / "ocop_cycle.bpmn")
    bad = tmp_path / "bad.bpmn"
    bad.write_text((PROCESSES / "ocop_cycle.bpmn").read_text(encoding="utf-8")
                   .replace('serviceTaskOperator id="notify"', 'serviceTaskOperator id="fax"'), encoding="utf-8")
    ok = CliRunner().invoke(main, ["validate", good, str(PROCESSES / "variants" / "ocop_cycle_two_tier.bpmn")])
    assert ok.exit_code == 0 and ok.output.count(": OK") == 2
    failed = CliRunner().invoke(main, ["validate", good, str(bad)])
    assert failed.exit_code == 1
    assert "handler 'fax' is not registered" in failed.output and "(element 'notify_" in failed.output
