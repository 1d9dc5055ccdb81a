"""Forged histories: someone with write access to the database, triggers
dropped, changes what the chains alone cannot show -- the instance row
beside a history, a history copied under a new instance, a checkpoint's
reach -- and verification names what was done."""
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from audit import checkpoints, export, verification
from engine import events
from storage.models import Jurisdiction
from testkit.cycle import Cycle, sheets
from tests.support import tamper
from tests.support.export_checks import run_checker
from web.cli import main


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "signing.pem"
    checkpoints.create_key(path)
    return checkpoints.load_private_key(path)


def recognised(world, product_name: str = "Hồ tiêu Gio Linh", score: float = 66) -> Cycle:
    cycle = Cycle(world, product_name).start().through_dossier()
    cycle.do("score_product", sheets(score))
    return cycle


def started(world, product_name: str) -> Cycle:
    return Cycle(world, product_name).start()


def findings(report, kind: str = events.ROW_ALTERED) -> list[tuple[int, str]]:
    """(instance, the column named) of each finding of a kind."""
    return [(p.instance_id, p.message.split(" / ")[-1].split(" is ")[0].removeprefix("the instance's "))
            for p in report.problems if p.kind == kind]


def issue(world, key) -> dict:
    with world.db.transaction() as session:
        return checkpoints.as_file(checkpoints.issue(session, key, world.clock()), key.public_key())


def check(world, document, key):
    with world.db.transaction() as session:
        return checkpoints.verify_document(session, document, key.public_key())


@pytest.mark.parametrize("data", [
    {"form": {"tên": "Hồ tiêu", "điểm": [66.5, None, True]}, "a\u2028": "</script>"},
    {"x": 1e16}, {"x": 1e-07}, {"x": float("nan")}, {"x": 2 ** 70}, {"😀": "\U0001f600"}])
def test_the_fast_recomputed_hash_is_the_rules_hash_and_refuses_a_change(data):
    """Verification tries orjson's text first (engine/events.py): it must
    give the rule's hash for every value, the rule deciding where they write
    a value differently, and never accept changed data."""
    at = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    rule = events.event_hash(events.GENESIS, 7, 3, at, 5, "task_completed", "review", data)
    assert events.recomputed_hash(rule, events.GENESIS, 7, 3, at, 5, "task_completed", "review", data) == rule
    changed = {**data, "x": 1}
    assert events.recomputed_hash(rule, events.GENESIS, 7, 3, at, 5, "task_completed", "review", changed) != rule


def test_an_untouched_record_verifies_with_nothing_unproven(world):
    recognised(world)
    started(world, "Gạo hữu cơ Gio Mỹ")
    report = verification.verify(world)
    assert report.ok and not report.unproven, report.problems + report.unproven


def test_swapped_products_are_found_by_verify_and_the_checkpoint(world, key):
    three_stars = recognised(world)
    other = started(world, "Gạo hữu cơ Gio Mỹ")
    document = issue(world, key)
    with world.db.transaction() as session:
        tamper.swap_products(session, three_stars.instance_id, other.instance_id)
    for replay_too in (False, True):
        report = verification.verify(world, replay_too=replay_too)
        assert (three_stars.instance_id, "product_id") in findings(report)
        assert (other.instance_id, "product_id") in findings(report)
    assert (three_stars.instance_id, "product_id") in findings(check(world, document, key))


def test_an_instance_moved_to_another_province_is_found(world, key):
    cycle = started(world, "Gạo hữu cơ Gio Mỹ")
    document = issue(world, key)
    with world.db.transaction() as session:
        areas = cycle.instance().areas
        elsewhere = session.scalar(select(Jurisdiction.id).where(
            Jurisdiction.level == "province", Jurisdiction.id != areas["province"]))
        tamper.update_instance(session, cycle.instance_id, areas={**areas, "province": elsewhere})
    report = verification.verify(world, [cycle.instance_id], replay_too=False)
    assert findings(report) == [(cycle.instance_id, "areas")]
    assert f"'province': {elsewhere}" in report.problems[0].message
    assert findings(check(world, document, key)) == [(cycle.instance_id, "areas")]
    with world.db.transaction() as session:
        tamper.update_instance(session, cycle.instance_id, areas=areas, jurisdiction_id=elsewhere)
    assert findings(verification.verify(world, [cycle.instance_id], replay_too=False)) == [
        (cycle.instance_id, "jurisdiction_id")]


@pytest.mark.parametrize("column, value", [("stars", 5), ("status", "running"), ("end_event", "end_five_stars"),
                                           ("year", 2019), ("process_id", "ocop_outreach")])
def test_an_outcome_or_start_column_forged_is_named(world, column, value):
    cycle = recognised(world)
    with world.db.transaction() as session:
        tamper.update_instance(session, cycle.instance_id, **{column: value})
    report = verification.verify(world, [cycle.instance_id], replay_too=False)
    assert (cycle.instance_id, column) in findings(report)


def test_a_renamed_product_is_found(world):
    cycle = started(world, "Gạo hữu cơ Gio Mỹ")
    with world.db.transaction() as session:
        session.execute(text("UPDATE product SET name = 'Gạo thường' WHERE id = :id"), {"id": cycle.product_id})
    assert findings(verification.verify(world, [cycle.instance_id], replay_too=False)) == [
        (cycle.instance_id, "product.name")]


def test_an_older_history_says_which_areas_it_cannot_prove(world):
    """A history started before the `started` event carried the area chain:
    its commune, district and province are still checked, the rest is said
    to be unproven, which is not a failure."""
    cycle = started(world, "Gạo hữu cơ Gio Mỹ")
    with world.db.transaction() as session:
        tamper.drop_append_only_guard(session)
        first = tamper.events(session, cycle.instance_id)[0]
        tamper.rewrite(session, cycle.instance_id, 1, {k: v for k, v in first.data.items() if k != "areas"})
    report = verification.verify(world, [cycle.instance_id])
    assert report.ok, report.problems
    assert [p.kind for p in report.unproven] == [events.UNPROVEN]
    assert "central" in report.unproven[0].message and "unproven" in report.unproven[0].message
    with world.db.transaction() as session:
        areas = cycle.instance().areas
        tamper.update_instance(session, cycle.instance_id, areas={**areas, "province": areas["province"] + 1})
    assert findings(verification.verify(world, [cycle.instance_id], replay_too=False)) == [
        (cycle.instance_id, "areas.province")]


def test_a_copied_history_dated_before_a_checkpoint_is_not_covered(world, key):
    cycle = recognised(world)
    world.clock.advance(days=1)
    document = issue(world, key)
    with world.db.transaction() as session:
        tamper.drop_append_only_guard(session)
        copy = tamper.copy_history(session, cycle.instance_id)
    # Its chain and row agree (a careful forger would rewrite the stored state for the replay too).
    assert verification.verify(world, [copy], replay_too=False).ok
    result = check(world, document, key)
    assert [(p.instance_id, p.seq, p.kind) for p in result.problems] == [(copy, 1, events.NOT_COVERED)]
    assert "does not include it" in result.problems[0].message
    with world.db.transaction() as session:
        assert checkpoints.verify_document(session, document, key.public_key(), instance_ids=[copy]).problems


def test_an_event_appended_after_a_checkpoint_but_dated_before_is_not_covered(world, key):
    cycle = started(world, "Gạo hữu cơ Gio Mỹ")
    world.clock.advance(days=1)
    document = issue(world, key)
    with world.db.transaction() as session:
        tamper.drop_append_only_guard(session)
        claim = tamper.events(session, cycle.instance_id)[0]
        tamper.append(session, cycle.instance_id, "cancelled", {"reason": "forged"}, at=claim.at)
    result = check(world, document, key)
    seq = cycle.instance().audit_seq
    assert [(p.instance_id, p.seq, p.kind) for p in result.problems if p.kind == events.NOT_COVERED] == [
        (cycle.instance_id, seq, events.NOT_COVERED)]


def test_the_checkpoint_mismatch_says_what_was_done_to_the_hashes(world, key):
    cycle = recognised(world)
    document = issue(world, key)
    with world.db.transaction() as session:
        tamper.drop_append_only_guard(session)
        event = tamper.event_where(session, cycle.instance_id, "task_completed", form_key="register_idea")
        tamper.alter(session, event, data_key="forged")
    message = check(world, document, key).problems[0].message
    assert "stored hashes were left as they were" in message and "recomputed" not in message
    with world.db.transaction() as session:
        tamper.rewrite(session, cycle.instance_id, event.seq, {**event.data, "data_key": "forged"})
    message = check(world, document, key).problems[0].message
    assert "every hash after it recomputed" in message


def test_verify_all_fails_on_a_swap_and_names_the_column(world, db_url):
    first, second = recognised(world), started(world, "Gạo hữu cơ Gio Mỹ")
    with world.db.transaction() as session:
        tamper.swap_products(session, first.instance_id, second.instance_id)
    result = CliRunner().invoke(main, ["audit", "verify", "--all", "--no-replay", "--jobs", "1"],
                                env={"OCOP_DATABASE_URL": db_url}, catch_exceptions=False)
    assert result.exit_code == 1
    assert f"instance {first.instance_id}, event 1: {events.ROW_ALTERED}: cột product_id" in result.output


# --- the standalone export checker ------------------------------------------------------------

def exported(world, key, tmp_path, instance_ids, name="export.json"):
    """The JSON export as the audit pages make it: the latest checkpoint's proofs and the public key."""
    with world.db.transaction() as session:
        proofs = checkpoints.Proofs(checkpoints.latest(session))
    text = "".join(export.json_chunks(world.db, instance_ids, world.clock(), proofs=proofs,
                                      public_key_pem=checkpoints.public_key_pem(key.public_key())))
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path, json.loads(text)


@pytest.fixture
def key_file(key, tmp_path):
    path = tmp_path / "public.pem"
    path.write_text(checkpoints.public_key_pem(key.public_key()), encoding="ascii")
    return path


def test_with_a_public_key_an_export_without_its_proof_fails(world, key, key_file, tmp_path):
    cycle = started(world, "Gạo hữu cơ Gio Mỹ")
    issue(world, key)
    path, document = exported(world, key, tmp_path, [cycle.instance_id])
    assert run_checker(path, key_file).returncode == 0
    del document["instances"][0]["checkpoint"]
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    refused = run_checker(path, key_file)
    assert refused.returncode == 1
    seq = cycle.instance().audit_seq
    assert f"instance {cycle.instance_id}: no checkpoint covers events 1-{seq}" in refused.stdout
    lenient = run_checker(path)  # no key given: said, not failed
    assert lenient.returncode == 0 and "covered by the chain only" in lenient.stdout
    assert "compare the fingerprint" in lenient.stdout


def test_with_a_public_key_events_after_the_checkpoint_fail(world, key, key_file, tmp_path):
    cycle = started(world, "Gạo hữu cơ Gio Mỹ")
    issue(world, key)
    seq = cycle.instance().audit_seq
    cycle.do("register_idea")
    path, _document = exported(world, key, tmp_path, [cycle.instance_id])
    refused = run_checker(path, key_file)
    assert refused.returncode == 1
    assert f"events {seq + 1}-{cycle.instance().audit_seq} come after the checkpoint" in refused.stdout


@pytest.mark.parametrize("field, value", [("product_id", 999), ("product_name", "Gạo thường"),
                                          ("status", "completed"), ("version", 99), ("definition", "khác")])
def test_the_exports_unhashed_fields_are_checked_against_the_events(world, key, key_file, tmp_path, field, value):
    cycle = started(world, "Gạo hữu cơ Gio Mỹ")
    issue(world, key)
    path, document = exported(world, key, tmp_path, [cycle.instance_id])
    document["instances"][0][field] = value
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    refused = run_checker(path, key_file)
    assert refused.returncode == 1
    assert f"instance {cycle.instance_id}: its {field} is {value!r}, the hashed events say" in refused.stdout


def test_the_checker_says_actor_names_are_unproven(world, key, key_file, tmp_path):
    cycle = started(world, "Gạo hữu cơ Gio Mỹ")
    issue(world, key)
    path, _document = exported(world, key, tmp_path, [cycle.instance_id])
    checked = run_checker(path, key_file)
    assert checked.returncode == 0 and "note: actor_name: not in the hashed record, unproven" in checked.stdout


def test_a_csv_export_says_how_far_it_can_be_verified(world, key_file, tmp_path):
    cycle = started(world, "Gạo hữu cơ Gio Mỹ")
    path = tmp_path / "export.csv"
    path.write_text("".join(export.csv_chunks(world.db, [cycle.instance_id])), encoding="utf-8")
    note = path.read_text(encoding="utf-8").splitlines()[0]
    assert note.startswith("# ocop-audit-export/1 CSV. Kiểm chứng: python3 verify_export.py")
    assert "no head and no checkpoint proof" in note and note.count(",") == len(export.CSV_COLUMNS) - 1
    checked = run_checker(path)
    assert checked.returncode == 0 and "only the chains are checked" in checked.stdout
    refused = run_checker(path, key_file)
    assert refused.returncode == 1 and "a CSV export carries no checkpoint proofs" in refused.stdout
