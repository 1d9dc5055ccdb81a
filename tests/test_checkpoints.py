"""Signed checkpoints: the Merkle tree, the Ed25519 signature, and the
rewrite that recomputes every hash, which only a checkpoint can catch."""
import base64
import copy
import hashlib
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from audit import checkpoints, verification
from engine import events
from testkit.cycle import RETURN, Cycle, sheets
from tests.support import tamper
from web.cli import main

SEED = "Hồ tiêu Gio Linh"


def reference_root(hashes):
    """RFC 6962's definition, recursively: split at the largest power of two."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_root(hashes[:k]) + reference_root(hashes[k:])).digest()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 32, 33])
def test_merkle_root_and_every_inclusion_proof(size):
    leaves = [checkpoints.leaf_bytes(i, i + 3, f"{i:064x}") for i in range(size)]
    hashes = [checkpoints.leaf_hash(leaf) for leaf in leaves]
    levels = checkpoints.tree_levels(hashes)
    root = checkpoints.merkle_root(hashes)
    assert root == reference_root(hashes)
    for index, leaf in enumerate(leaves):
        proof = checkpoints.inclusion_proof(levels, index)
        assert checkpoints.root_from_proof(leaf, index, size, proof) == root
        if proof:
            bent = [bytes(32)] + proof[1:]
            assert checkpoints.root_from_proof(leaf, index, size, bent) != root
        assert checkpoints.root_from_proof(b"other", index, size, proof) != root


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "signing.pem"
    assert checkpoints.create_key(path) and not checkpoints.create_key(path)  # never overwritten
    assert path.stat().st_mode & 0o777 == 0o600
    return checkpoints.load_private_key(path)


def issue(world, key):
    with world.db.transaction() as session:
        return checkpoints.as_file(checkpoints.issue(session, key, world.clock()), key.public_key())


def check(world, document, public_key):
    with world.db.transaction() as session:
        return checkpoints.verify_document(session, document, public_key)


def recognised(world) -> Cycle:
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    cycle.do("review_idea", RETURN)
    cycle.through_dossier()
    cycle.do("score_product", sheets(60))
    return cycle


def test_a_checkpoint_covers_every_instance_and_verifies(world, key):
    cycle = recognised(world)
    document = issue(world, key)
    statement = document["statement"]
    leaves = {leaf[0]: leaf for leaf in document["leaves"]}
    assert statement["tree_size"] == len(leaves) >= 2  # outreach campaigns and the product
    assert leaves[cycle.instance_id][1] == cycle.instance().audit_seq
    assert statement["key_id"] == checkpoints.key_id(key.public_key())
    assert check(world, document, key.public_key()).ok
    # Work after the checkpoint does not disturb it: histories only grow.
    Cycle(world, "Gạo hữu cơ Gio Mỹ").start().do("register_idea")
    assert check(world, document, key.public_key()).ok


def test_the_database_refuses_to_change_a_checkpoint(world, key):
    issue(world, key)
    for statement in ("UPDATE audit_checkpoint SET root_hash = 'x'", "DELETE FROM audit_checkpoint"):
        with pytest.raises(DBAPIError, match="append-only"):
            with world.db.transaction() as session:
                session.execute(text(statement))


def test_a_rewrite_with_recomputed_hashes_is_caught_by_the_checkpoint(world, key):
    cycle = recognised(world)
    document = issue(world, key)
    with world.db.transaction() as session:
        tamper.drop_append_only_guard(session)
        event = tamper.event_where(session, cycle.instance_id, "task_completed", form_key="register_idea")
        tamper.rewrite(session, cycle.instance_id, event.seq,
                       {**event.data, "form": {**event.data["form"], "raw_materials": "Hồ tiêu nhập khẩu"}})
    assert verification.verify(world, [cycle.instance_id], replay_too=False).ok  # the chain alone is fooled
    result = check(world, document, key.public_key())
    assert [(p.instance_id, p.kind) for p in result.problems] == [(cycle.instance_id, events.CHECKPOINT_MISMATCH)]
    assert f"events 1-{cycle.instance().audit_seq} no longer hash to the head signed" in result.problems[0].message


def test_deleted_history_is_caught_by_the_checkpoint(world, key):
    cycle = recognised(world)
    document = issue(world, key)
    with world.db.transaction() as session:
        tamper.drop_append_only_guard(session)
        session.execute(text("DELETE FROM audit_event WHERE instance_id = :i AND seq > 5"), {"i": cycle.instance_id})
    result = check(world, document, key.public_key())
    assert [(p.instance_id, p.seq, p.kind) for p in result.problems] == [(cycle.instance_id, 6, events.EVENT_MISSING)]


def test_an_altered_checkpoint_file_or_another_key_is_refused(world, key, tmp_path):
    recognised(world)
    document = issue(world, key)
    moved = copy.deepcopy(document)
    moved["leaves"][0][2] = "f" * 64
    assert "the leaves do not make the signed root" in check(world, moved, key.public_key()).problems[0].message
    restated = copy.deepcopy(document)
    restated["statement"]["tree_size"] += 1
    assert "signature does not verify" in check(world, restated, key.public_key()).problems[0].message
    resigned = copy.deepcopy(document)
    resigned["signature"] = base64.b64encode(b"\0" * 64).decode()
    assert not check(world, resigned, key.public_key()).ok
    other = tmp_path / "other.pem"
    checkpoints.create_key(other)
    assert "signature does not verify" in check(world, document, checkpoints.load_private_key(other).public_key()
                                                ).problems[0].message


def test_proof_for_one_instance_leads_to_the_signed_root(world, key):
    cycle = recognised(world)
    issue(world, key)
    with world.db.transaction() as session:
        proof = checkpoints.Proofs(checkpoints.latest(session)).for_instance(cycle.instance_id)
    leaf = checkpoints.leaf_bytes(*proof["leaf"])
    root = checkpoints.root_from_proof(leaf, proof["leaf_index"], proof["statement"]["tree_size"],
                                       [bytes.fromhex(h) for h in proof["proof"]])
    assert root.hex() == proof["statement"]["root"]


def test_the_audit_commands(world, db_url, tmp_path):
    cycle = recognised(world)
    env = {"OCOP_DATABASE_URL": db_url, "OCOP_AUDIT_KEY_FILE": str(tmp_path / "key.pem")}
    runner = CliRunner()

    def ocop(*args):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    assert "no audit signing key" in ocop("audit", "checkpoint").output
    checkpoints.create_key(tmp_path / "key.pem")
    out = tmp_path / "checkpoint.json"
    made = ocop("audit", "checkpoint", "--out", str(out))
    assert made.exit_code == 0 and "Checkpoint 1:" in made.output
    assert json.loads(out.read_text())["statement"]["tree_size"] >= 2

    ok = ocop("audit", "verify", "--all", "--checkpoint", str(out), "--jobs", "1")
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and "Verified chains and replays of" in ok.output
    assert ocop("audit", "verify").exit_code == 2  # nothing to verify named

    with world.db.transaction() as session:
        tamper.drop_append_only_guard(session)
        event = tamper.event_where(session, cycle.instance_id, "task_completed", form_key="submit_plan")
        tamper.rewrite(session, cycle.instance_id, event.seq, {**event.data, "form": {
            **event.data["form"], "investment_vnd": 900_000_000}})
    failed = ocop("audit", "verify", "--instance", str(cycle.instance_id), "--checkpoint", str(out))
    assert failed.exit_code == 1
    assert f"instance {cycle.instance_id}, event {cycle.instance().audit_seq}: checkpoint mismatch" in failed.output
    assert f"instance {cycle.instance_id}, event " in failed.output and "state drift" in failed.output
