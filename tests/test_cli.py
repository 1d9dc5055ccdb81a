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


def ocop(db_url, tmp_path, *args):
    """The command against `db_url`, with its signing key under tmp_path."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False,
                              env={"OCOP_DATABASE_URL": db_url, "OCOP_AUDIT_KEY_FILE": str(tmp_path / "key.pem")})


def test_init_says_whether_it_seeded_the_demo(db_url, tmp_path):
    bare = ocop(db_url, tmp_path, "init", "--no-demo")
    assert bare.exit_code == 0, bare.output
    assert "Deployed ocop_cycle version 1" in bare.output and "Deployed ocop_cycle_two_tier version 1" in bare.output
    assert "No demo data (--no-demo)" in bare.output and "nobody can sign in yet" in bare.output
    assert "ocop-demo" not in bare.output and "Demo seeded" not in bare.output

    seeded = ocop(db_url, tmp_path, "init")
    assert seeded.exit_code == 0, seeded.output
    assert "Demo seeded" in seeded.output
    assert "password ocop-demo" in seeded.output
    for username in ("admin", "qlct.qt", "kiemtoan", "htx.giomy"):
        assert f"  {username} " in seeded.output
    # The demo's past (cycles walked on a clock set back, certificates,
    # a revocation) is a true history: every chain and replay verifies.
    verified = ocop(db_url, tmp_path, "audit", "verify", "--all")
    assert verified.exit_code == 0 and "OK" in verified.output, verified.output

    again = ocop(db_url, tmp_path, "init")
    assert again.exit_code == 0, again.output
    assert "Demo data: already there" in again.output and "not seeded again" in again.output
    assert "Demo seeded" not in again.output and "password ocop-demo" in again.output
    assert "ocop_cycle: already deployed as version 1" in again.output and "nothing changed" in again.output
    assert "Deployed" not in again.output


def test_deploy_of_an_identical_file_says_nothing_changed(db_url, tmp_path):
    from engine.access import SYSTEM_ACTOR
    from engine.bpmn_engine import BpmnEngine
    from programme import definitions
    from storage.db import Database

    national = PROCESSES / "ocop_cycle.bpmn"
    assert ocop(db_url, tmp_path, "init", "--no-demo").exit_code == 0
    same = ocop(db_url, tmp_path, "deploy", str(national), "--name", "ocop_cycle")
    assert same.exit_code == 0, same.output
    assert "ocop_cycle: already deployed as version 1" in same.output and "nothing changed" in same.output
    assert "Deployed" not in same.output

    changed = tmp_path / "ocop_cycle.bpmn"
    changed.write_bytes(national.read_bytes() + b"<!-- changed -->\n")
    new = ocop(db_url, tmp_path, "deploy", str(changed), "--name", "ocop_cycle", "-m", "a comment")
    assert new.exit_code == 0, new.output
    assert "Deployed ocop_cycle version 2" in new.output and ", active" in new.output

    database = Database(db_url)
    try:  # roll back to version 1; deploying version 2's file again makes it active, storing nothing
        engine = BpmnEngine(database)
        with database.reading() as session:
            first = next(v for v in definitions.list_versions(session) if v.name == "ocop_cycle" and v.version == 1)
        definitions.activate(engine, SYSTEM_ACTOR, first.id, "roll back")
        again = ocop(db_url, tmp_path, "deploy", str(changed), "--name", "ocop_cycle")
        assert again.exit_code == 0, again.output
        assert "ocop_cycle: already deployed as version 2" in again.output
        assert "made it the active version again" in again.output and "Deployed" not in again.output
        with database.reading() as session:
            versions = [v for v in definitions.list_versions(session) if v.name == "ocop_cycle"]
        assert [(v.version, v.is_active) for v in versions] == [(2, True), (1, False)]
    finally:
        database.dispose()


def test_worker_once_says_what_each_count_counts(db_url, tmp_path):
    assert ocop(db_url, tmp_path, "init", "--no-demo").exit_code == 0
    result = ocop(db_url, tmp_path, "worker", "--once")
    assert result.exit_code == 0, result.output
    lines = set(result.output.splitlines())
    assert "timers: 0 instances whose due timers fired" in lines
    assert "retries: 0 incidents resolved by a retry" in lines
    assert "outbox: 0 notifications delivered" in lines
    assert "digests: 0 digests sent" in lines
    assert "checkpoint: 1 checkpoints signed" in lines  # the first checkpoint: init created the key
    listed = ocop(db_url, tmp_path, "worker", "--list")
    assert "(counts notifications delivered)" in listed.output


def test_simulate_refuses_without_the_demo_and_says_where_it_writes(db_url, tmp_path):
    help_text = ocop(db_url, tmp_path, "simulate", "--help").output
    assert "Writes into the configured database" in " ".join(help_text.split())

    empty = ocop(db_url, tmp_path, "simulate", "--products", "2")
    assert empty.exit_code == 1
    assert "is not an ocop-flow database yet: run `ocop init` first" in empty.output
    assert "Traceback" not in empty.output

    assert ocop(db_url, tmp_path, "init", "--no-demo").exit_code == 0
    bare = ocop(db_url, tmp_path, "simulate", "--products", "2")
    assert bare.exit_code == 1
    assert "the demo data is missing from" in bare.output and "run `ocop init` to seed it" in bare.output
    assert "Traceback" not in bare.output
