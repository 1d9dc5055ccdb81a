"""`ocop simulate --years`: the programme over years on a fake clock, its
figures counted from the database, and a record that verifies."""
import json
import uuid
from datetime import date, datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from background.retries import retry_failed_service_tasks
from background.timers import fire_due_timers
from demo.seed import seed_areas_and_people
from demo.sim_figures import format_years
from demo.sim_years import simulate_years
from engine.bpmn_engine import BpmnEngine
from engine.clock import MovableClock
from programme.definitions import deploy_bundled
from storage.council_models import CouncilSession
from storage.db import Database
from storage.migrate import upgrade
from storage.models import AuditEvent, ProcessInstance
from storage.recognition_models import CERT_EXPIRED, CERT_REPLACED, Certificate, Decision, DecisionItem
from web.cli import main

JOBS = {"timers": fire_due_timers, "retries": retry_failed_service_tasks}


def fresh_engine(url: str) -> BpmnEngine:
    """An empty database with the demo's areas, people and diagrams, on a
    clock standing in March 2026 (the simulation starts on 1/1/2027)."""
    db = Database(url)
    upgrade(db.sql_engine)
    engine = BpmnEngine(db, clock=MovableClock(datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)))
    seed_areas_and_people(engine)
    deploy_bundled(engine)
    return engine


def verify_all(url: str, tmp_path) -> str:
    result = CliRunner().invoke(main, ["audit", "verify", "--all", "--jobs", "1"], catch_exceptions=False,
                                env={"OCOP_DATABASE_URL": url, "OCOP_AUDIT_KEY_FILE": str(tmp_path / "key.pem")})
    assert result.exit_code == 0, result.output
    return result.output


def test_forty_products_over_two_years(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = fresh_engine(url)
    result = simulate_years(engine, 40, 2, seed=11, jobs=JOBS)
    total = result["total"]
    assert result["start"] == "2027-01-01" and result["end"] == "2029-01-01"
    assert sorted(result["per_year"]) == [2027, 2028]
    # Registrations are spread over both years' windows, not all on day one.
    # (plus, in 2028, products not recognised in 2027 that try again)
    assert [result["per_year"][y]["ideas"] - result["per_year"][y]["registered_again"]
            for y in (2027, 2028)] == [20, 20]
    assert result["per_year"][2027]["registered_again"] == 0
    with engine.db.reading() as session:
        started = [row.astimezone(timezone.utc) if row.tzinfo else row.replace(tzinfo=timezone.utc)
                   for row in session.scalars(select(ProcessInstance.started_at).where(
                       ProcessInstance.process_id == "ocop_product_cycle"))]
        sessions_held = session.scalar(select(func.count()).select_from(CouncilSession))
        timers = session.scalar(select(func.count()).where(AuditEvent.kind == "timer_fired"))
    assert len({moment.date() for moment in started}) > 15
    assert all(moment.month <= 6 for moment in started)
    # Producers drop out between idea and dossier (withdrawn by a cancel).
    assert total["dropped_before_dossier"] >= 4 and total["withdrawn"] >= 4
    assert 0.1 <= total["dropped_share_of_accepted"] <= 0.6
    # Councils sit and recognise; a sample this size allows loose bounds only.
    # The worker's timers ran on the moved clock: rounds, an overdue commune check escalated.
    assert sessions_held > 0 and timers > 0 and total["escalations"] >= 1
    recognised = sum(star["count"] for star in total["stars"].values())
    assert recognised == total["recognised"] >= 5
    assert total["stars"]["3"]["count"] >= total["stars"]["4"]["count"]
    assert total["stars"]["5"]["count"] <= 1
    # Steps take simulated months: nobody is recognised within a season.
    assert result["days_idea_to_recognition"]["median"] > 150
    # Every recognised product has its numbered decision and certificate (a
    # certificate issued late in 2028 may stay behind its cycle's last step).
    assert total["certificates_issued"] >= recognised - 1 and total["certificates_issued"] >= 5
    assert total["new"] == total["certificates_issued"] - total["re_evaluated"] - total["upgraded"]
    assert 0 < total["certificates_valid_at_end"] <= total["certificates_issued"]
    assert sum(total["certificates_valid_at_end_by_stars"].values()) == total["certificates_valid_at_end"]
    shown = format_years(result)
    assert "Giấy chứng nhận còn hiệu lực cuối kỳ" in shown and "certificates issued by stars" in shown
    with engine.db.reading() as session:
        issued = session.scalar(select(func.count()).select_from(Certificate))
        decisions = session.execute(select(Decision.authority, func.count(DecisionItem.id))
                                    .join(DecisionItem, DecisionItem.decision_id == Decision.id)
                                    .group_by(Decision.id)).all()
    assert issued == total["certificates_issued"]  # the seed has no certificates of its own
    # One decision per round and authority: decisions gather several products.
    assert decisions and max(count for _authority, count in decisions) > 1
    verify_all(url, tmp_path)

    # The same seed on another database: the same figures.
    again = simulate_years(fresh_engine(f"sqlite:///{tmp_path / 'b.db'}"), 40, 2, seed=11, jobs=JOBS)
    assert json.dumps(again, sort_keys=True) == json.dumps(result, sort_keys=True)


def test_certificates_live_their_life_over_five_years(db_url, tmp_path):
    """Five years: the first years' certificates (36 months) reach their
    re-evaluation window; most producers file and are re-recognised (their
    council gives written opinions), the others' certificates run out; a
    share is inspected each year."""
    url = db_url  # SQLite and PostgreSQL
    engine = fresh_engine(url)
    result = simulate_years(engine, 60, 5, seed=7, jobs=JOBS)
    total = result["total"]
    assert total["certificates_issued"] >= 20
    assert total["reevaluations_filed"] >= total["re_evaluated"] >= 1
    assert total["expired"] >= 1
    assert total["inspections"] >= 1
    with engine.db.reading() as session:
        statuses = dict(session.execute(select(Certificate.status, func.count()).group_by(Certificate.status)).all())
        opinions = session.scalar(select(func.count()).where(AuditEvent.kind == "task_completed",
                                                             AuditEvent.element_id == "task_opinion_reevaluation"))
    assert statuses.get(CERT_REPLACED, 0) == total["re_evaluated"] + total["upgraded"]
    assert statuses.get(CERT_EXPIRED, 0) == total["expired"]
    if total["re_evaluated"]:
        assert opinions >= 3  # written opinions, each member's own task
    assert "re-recognised" in format_years(result)
    verify_all(url, tmp_path)


def test_a_tiny_run_on_postgresql(pg_server, tmp_path):
    url = pg_server.create_database(f"t_sim_{uuid.uuid4().hex[:12]}")
    engine = fresh_engine(url)
    result = simulate_years(engine, 8, 1, seed=3, jobs=JOBS, start=date(2027, 1, 1))
    assert result["per_year"][2027]["ideas"] == 8
    assert result["total"]["ideas_accepted"] >= 1
    verify_all(url, tmp_path)


def test_the_command_prints_the_figures_and_writes_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    env = {"OCOP_DATABASE_URL": url, "OCOP_AUDIT_KEY_FILE": str(tmp_path / "key.pem")}
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env, catch_exceptions=False).exit_code == 0
    out = tmp_path / "figures.json"
    result = runner.invoke(main, ["simulate", "--products", "6", "--years", "1", "--seed", "2", "--history", "0",
                                  "--start", "2030-01-01", "--json", str(out)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Ý tưởng đăng ký / ideas" in result.output and "Thời gian / time" in result.output
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["products"] == 6 and written["per_year"]["2030"]["ideas"] == 6
    assert "seconds" in written


def test_a_run_with_history_begins_with_a_stock_of_certificates(tmp_path, monkeypatch):
    """--history 3: the programme ran three years before the start (as many
    products a year): in the one year counted, their certificates are
    re-evaluated or run out, are inspected, a few upgraded; their earlier
    years are not counted."""
    # Every 3-star producer whose product is into the 4-star band asks (a
    # sample this size has too few of them otherwise).
    monkeypatch.setattr("demo.sim_lifecycle.UPGRADE_ASKS", 1.0)
    monkeypatch.setattr("demo.sim_lifecycle.UPGRADE_TARGET", 70.0)
    url = f"sqlite:///{tmp_path / 'g.db'}"
    env = {"OCOP_DATABASE_URL": url, "OCOP_AUDIT_KEY_FILE": str(tmp_path / "key.pem")}
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env, catch_exceptions=False).exit_code == 0
    out = tmp_path / "figures.json"
    result = runner.invoke(main, ["simulate", "--products", "30", "--years", "1", "--history", "3", "--seed", "4",
                                  "--start", "2031-01-01", "--json", str(out)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "+ 90 của các năm trước / from the years before" in result.output
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["products"] == 30 and written["stock"] == 90 and list(written["per_year"]) == ["2031"]
    total = written["total"]
    assert total["reevaluations_filed"] >= 1 and total["re_evaluated"] + total["expired"] >= 1
    assert total["certificates_valid_at_end"] >= 10 and total["inspections"] >= 1
    assert total["upgrade_requests"] >= 1  # a few 3-star products grew into the 4-star band
    verify_all(url, tmp_path)


@pytest.mark.parametrize("years", [0, 21])
def test_the_command_refuses_years_out_of_range(tmp_path, years):
    result = CliRunner().invoke(main, ["simulate", "--years", str(years)],
                                env={"OCOP_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}"})
    assert result.exit_code == 2 and "--years" in result.output


def test_excellent_products_go_to_the_ministry_in_its_round(tmp_path, monkeypatch):
    """Products of 95 points: the province scores them 90+ and proposes them;
    the ministry's council sits in its round (proposals by 30/7 or 30/1,
    session before 30/9 or 30/3) and recognises 5 stars."""
    from demo.sim_behaviour import Behaviour
    from storage.council_models import Council
    from storage.models import Jurisdiction
    monkeypatch.setattr(Behaviour, "quality", lambda self: 95.0)
    monkeypatch.setattr(Behaviour, "drops_out", lambda self, quality: False)
    url = f"sqlite:///{tmp_path / 'e.db'}"
    engine = fresh_engine(url)
    result = simulate_years(engine, 6, 2, seed=5, jobs=JOBS)
    assert result["total"]["stars"]["5"]["count"] >= 1
    with engine.db.reading() as session:
        held = session.execute(select(CouncilSession.held_on).join(Council, Council.id == CouncilSession.council_id)
                               .join(Jurisdiction, Jurisdiction.id == Council.area_id)
                               .where(Jurisdiction.level == "central")).scalars().all()
    assert held and all((d.month, d.day) <= (3, 30) or (8, 1) <= (d.month, d.day) <= (9, 30) for d in held)
    verify_all(url, tmp_path)
