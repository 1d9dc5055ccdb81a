"""Checkpoints and verification in the browser's pages: who may issue and
download them, the file verifies with the published key, and the verify
button names what was tampered with."""
import json

import pytest
from sqlalchemy import func, select

from audit import checkpoints
from storage.models import AuditCheckpoint
from testkit.cycle import Cycle
from testkit.web_login import login
from tests.support import tamper
from tests.support.export_checks import run_checker

SEED = "Hồ tiêu Gio Linh"       # Quảng Trị
TWO_TIER = "Rượu mận Sa Pa"     # Lào Cai


@pytest.fixture
def key(audit_signing_key):
    checkpoints.create_key(audit_signing_key)
    return checkpoints.load_private_key(audit_signing_key)


def started(world, name=SEED) -> int:
    cycle = Cycle(world, name).start()
    cycle.do("register_idea")
    return cycle.instance_id


def test_an_auditor_issues_and_downloads_a_checkpoint(world, client, key):
    instance_id = started(world)
    token = login(client, "kiemtoan")
    page = client.get("/audit/checkpoints/")
    assert page.status_code == 200 and checkpoints.key_id(key.public_key()) in page.get_data(as_text=True)
    issued = client.post("/audit/checkpoints/", data={"csrf_token": token}, follow_redirects=True)
    assert issued.status_code == 200 and "Đã ký mốc kiểm toán 1" in issued.get_data(as_text=True)

    download = client.get("/audit/checkpoints/1.json")
    assert download.headers["Content-Disposition"].startswith("attachment")
    document = json.loads(download.get_data(as_text=True))
    assert instance_id in [leaf[0] for leaf in document["leaves"]]
    published = checkpoints.load_public_key(client.get("/audit/checkpoints/public-key.pem").get_data())
    with world.db.transaction() as session:
        assert checkpoints.verify_document(session, document, published).ok
    assert client.get("/audit/checkpoints/99.json").status_code == 404


def test_issuing_needs_the_csrf_token_and_the_auditor_role(world, client, key):
    login(client, "kiemtoan")
    assert client.post("/audit/checkpoints/", data={}).status_code == 400
    client.get("/logout")
    for username in ("qlct.qt", "cb.qt-gl", "htx.giomy"):
        token = login(client, username)
        assert client.get("/audit/checkpoints/").status_code == 403
        assert client.post("/audit/checkpoints/", data={"csrf_token": token}).status_code == 403
        client.get("/logout")
    with world.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 0


def test_verify_button_reports_intact_then_names_the_tampered_event(world, client, key):
    instance_id = started(world)
    token = login(client, "kiemtoan")
    client.post("/audit/checkpoints/", data={"csrf_token": token})
    page = client.post(f"/audit/instances/{instance_id}/verify", data={"csrf_token": token})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-verified="ok"' in text and "mốc kiểm toán đã ký 1" in text

    with world.db.transaction() as session:
        tamper.drop_append_only_guard(session)
        event = tamper.event_where(session, instance_id, "task_completed", form_key="register_idea")
        tamper.rewrite(session, instance_id, event.seq, {**event.data, "form": {
            **event.data["form"], "raw_materials": "Hồ tiêu nhập khẩu"}})
    text = client.post(f"/audit/instances/{instance_id}/verify", data={"csrf_token": token}).get_data(as_text=True)
    assert 'data-verified="failed"' in text
    assert "checkpoint mismatch" in text and "state drift" in text


def test_verify_follows_the_readers_scope(world, client, key):
    in_qt, in_lc = started(world), started(world, TWO_TIER)
    token = login(client, "qlct.qt")  # program manager of Quảng Trị
    assert client.post(f"/audit/instances/{in_qt}/verify", data={"csrf_token": token}).status_code == 200
    assert client.post(f"/audit/instances/{in_lc}/verify", data={"csrf_token": token}).status_code == 404
    assert client.post("/audit/instances/999999/verify", data={"csrf_token": token}).status_code == 404
    client.get("/logout")
    token = login(client, "cb.qt-gl")
    assert client.post(f"/audit/instances/{in_qt}/verify", data={"csrf_token": token}).status_code == 403


def run_verifier(tmp_path, export: bytes, public_key_pem: bytes | None = None):
    path = tmp_path / "export.json"
    path.write_bytes(export)
    if public_key_pem:
        (tmp_path / "key.pem").write_bytes(public_key_pem)
    return run_checker(path, tmp_path / "key.pem" if public_key_pem else None)


def test_an_export_carries_its_checkpoint_proof_for_the_outside_verifier(world, client, key, tmp_path):
    instance_id = started(world)
    token = login(client, "kiemtoan")
    client.post("/audit/checkpoints/", data={"csrf_token": token})
    published = client.get("/audit/checkpoints/public-key.pem").get_data()
    exported = client.get(f"/audit/instances/{instance_id}/export.json").get_data()
    assert json.loads(exported)["instances"][0]["checkpoint"]["checkpoint"] == 1
    checked = run_verifier(tmp_path, exported, published)
    assert checked.returncode == 0 and "1 instances" in checked.stdout and "1 checkpoint proofs: OK" in checked.stdout

    with world.db.transaction() as session:  # the careful rewrite, after the checkpoint
        tamper.drop_append_only_guard(session)
        event = tamper.event_where(session, instance_id, "task_completed", form_key="register_idea")
        tamper.rewrite(session, instance_id, event.seq, {**event.data, "form": {
            **event.data["form"], "expected_market": "Xuất khẩu"}})
    rewritten = client.get(f"/audit/instances/{instance_id}/export.json").get_data()
    caught = run_verifier(tmp_path, rewritten, published)
    assert caught.returncode == 1
    assert f"instance {instance_id}, checkpoint 1: events 1-" in caught.stdout
    assert "do not hash to the head signed in the checkpoint" in caught.stdout

    forged = json.loads(exported)
    forged["instances"][0]["checkpoint"]["statement"]["root"] = "0" * 64
    refused = run_verifier(tmp_path, json.dumps(forged).encode(), published)
    assert refused.returncode == 1 and "signature does not verify" in refused.stdout
