"""Signed checkpoints of the whole record.

A hash chain shows that an instance's history is consistent with itself,
not that it is the history that was written: someone with write access to
the database can rewrite an event and recompute every later hash. A
checkpoint closes that gap. It takes every instance's chain head
(instance id, last seq, last hash) as the leaves of one Merkle tree built
as in Certificate Transparency (RFC 6962, section 2.1: leaf hash
sha256(0x00 || leaf), node hash sha256(0x01 || left || right)), and signs
the root with an Ed25519 key that lives in a file outside the database.

To verify, the chain of each leaf's instance is recomputed from the
stored events (the stored hash column is not trusted) up to the leaf's
seq; it must arrive at the signed head. A rewrite with recomputed hashes
arrives elsewhere. An auditor keeps the downloaded checkpoint file (and
the public key's fingerprint) outside the system.

A checkpoint also bounds what may appear after it: an instance it does not
include, or events past a leaf's seq, dated before it, were not there when
it was signed (a history copied and rehashed under a new instance, for
one). Those are reported too, but for a short grace period before the
checkpoint's time: a call that began before the checkpoint read the heads
may commit after it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.chain import read_events
from audit.instance_row import check_row, read_rows
from engine.events import CHECKPOINT_MISMATCH, EVENT_MISSING, GENESIS, NOT_COVERED, Finding, recomputed_hash
from storage.db import Database, as_utc
from storage.models import AuditCheckpoint, AuditEvent, ProcessInstance

FORMAT = "ocop-checkpoint/1"
DEFAULT_KEY_FILE = Path("instance") / "audit_signing_key.pem"
# How long before a checkpoint's time a call may have begun and still commit after
# the checkpoint read the heads: far above an engine call's duration.
GRACE = timedelta(seconds=60)


# --- the signing key ------------------------------------------------------------

def key_path() -> Path:
    """Where the signing key lives: OCOP_AUDIT_KEY_FILE, else instance/."""
    return Path(os.environ.get("OCOP_AUDIT_KEY_FILE") or DEFAULT_KEY_FILE)


def create_key(path: Path) -> bool:
    """Create the Ed25519 signing key (owner-only file) unless it exists.
    Returns whether it was created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return True


def load_private_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        raise FileNotFoundError(f"no audit signing key at {path} (`ocop init` creates it; "
                                "OCOP_AUDIT_KEY_FILE points elsewhere)")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """A public key from PEM; a private key's PEM gives its public half."""
    if b"PRIVATE KEY" in pem:
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError("not an Ed25519 key")
        return private.public_key()
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's fingerprint: sha256 of its raw 32 bytes, hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


# --- the Merkle tree (RFC 6962) -------------------------------------------------

def leaf_bytes(instance_id: int, seq: int, head: str) -> bytes:
    return f"{instance_id}:{seq}:{head}".encode("ascii")


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_levels(hashes: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first. Built bottom-up: a node left
    without a partner at the end of a level moves up unchanged, which gives
    exactly RFC 6962's tree (its split at the largest power of two)."""
    levels = [list(hashes) or [hashlib.sha256(b"").digest()]]
    while len(levels[-1]) > 1:
        level = levels[-1]
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        levels.append(paired)
    return levels


def merkle_root(hashes: list[bytes]) -> bytes:
    return tree_levels(hashes)[-1][0]


def inclusion_proof(levels: list[list[bytes]], index: int) -> list[bytes]:
    """The audit path of leaf `index` (RFC 6962, 2.1.1): the sibling at
    each level that has one."""
    proof = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def root_from_proof(leaf: bytes, index: int, size: int, proof: list[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162, 2.1.3.2)."""
    if index >= size:
        raise ValueError("leaf index outside the tree")
    fn, sn, node = index, size - 1, leaf_hash(leaf)
    for sibling in proof:
        if sn == 0:
            raise ValueError("proof longer than the tree")
        if fn % 2 == 1 or fn == sn:
            node = _node(sibling, node)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = _node(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("proof shorter than the tree")
    return node


# --- issuing -------------------------------------------------------------------

@dataclass(frozen=True)
class Leaf:
    instance_id: int
    seq: int
    head: str

    @property
    def bytes(self) -> bytes:
        return leaf_bytes(self.instance_id, self.seq, self.head)


def statement_bytes(statement: dict) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def issue(session: Session, private_key: Ed25519PrivateKey, now: datetime,
          created_by: int | None = None) -> AuditCheckpoint:
    """Sign the heads of every instance as they stand in this transaction."""
    rows = session.execute(select(ProcessInstance.id, ProcessInstance.audit_seq, ProcessInstance.audit_head)
                           .where(ProcessInstance.audit_seq > 0).order_by(ProcessInstance.id)).all()
    leaves = [Leaf(r.id, r.audit_seq, r.audit_head) for r in rows]
    root = merkle_root([leaf_hash(leaf.bytes) for leaf in leaves]).hex()
    public = private_key.public_key()
    statement = {"format": FORMAT, "created_at": as_utc(now).isoformat(timespec="microseconds"),
                 "tree_size": len(leaves), "event_count": sum(leaf.seq for leaf in leaves), "root": root,
                 "key_id": key_id(public)}
    signed = statement_bytes(statement)
    checkpoint = AuditCheckpoint(
        created_at=now, created_by=created_by, tree_size=len(leaves), event_count=statement["event_count"],
        root_hash=root, key_id=statement["key_id"], statement=signed.decode("ascii"),
        signature=base64.b64encode(private_key.sign(signed)).decode("ascii"),
        leaves=[[leaf.instance_id, leaf.seq, leaf.head] for leaf in leaves])
    session.add(checkpoint)
    session.flush()
    return checkpoint


def sign(db: Database, private_key: Ed25519PrivateKey, now: datetime,
         created_by: int | None = None) -> AuditCheckpoint:
    """Issue a checkpoint in a transaction of its own (an auditor's request,
    the command line). The returned row keeps its loaded values."""
    with db.transaction() as session:
        return issue(session, private_key, now, created_by)


def as_file(checkpoint: AuditCheckpoint, public_key: Ed25519PublicKey | None = None) -> dict:
    """The checkpoint as the JSON document an auditor downloads and keeps."""
    document = {"format": FORMAT, "id": checkpoint.id, "statement": json.loads(checkpoint.statement),
                "signature": checkpoint.signature, "leaves": checkpoint.leaves}
    if public_key is not None:
        document["public_key"] = public_key_pem(public_key)
    return document


def latest(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))


def checkpoint_by_id(session: Session, checkpoint_id: int) -> AuditCheckpoint | None:
    return session.get(AuditCheckpoint, checkpoint_id)


def recent_checkpoints(session: Session, limit: int = 200) -> list:
    """The newest checkpoints, newest first, without their leaves (a
    checkpoint's leaf list grows with the number of instances)."""
    return list(session.execute(select(AuditCheckpoint.id, AuditCheckpoint.created_at, AuditCheckpoint.tree_size,
                                       AuditCheckpoint.event_count, AuditCheckpoint.root_hash,
                                       AuditCheckpoint.key_id)
                                .order_by(AuditCheckpoint.id.desc()).limit(limit)).all())


class Proofs:
    """Inclusion proofs in one checkpoint, its tree built once: what an
    outside party needs to check that an instance's head is in the signed
    root (the leaf, its index, the audit path, the signed statement)."""

    def __init__(self, checkpoint: AuditCheckpoint):
        self.checkpoint_id = checkpoint.id
        self.statement = json.loads(checkpoint.statement)
        self.signature = checkpoint.signature
        self.leaves = checkpoint.leaves
        self.index = {leaf[0]: i for i, leaf in enumerate(checkpoint.leaves)}
        self.levels = tree_levels([leaf_hash(leaf_bytes(*leaf)) for leaf in checkpoint.leaves])

    def for_instance(self, instance_id: int) -> dict | None:
        index = self.index.get(instance_id)
        if index is None:
            return None
        return {"checkpoint": self.checkpoint_id, "statement": self.statement, "signature": self.signature,
                "leaf": self.leaves[index], "leaf_index": index,
                "proof": [h.hex() for h in inclusion_proof(self.levels, index)]}


# --- verifying ------------------------------------------------------------------

@dataclass
class CheckpointResult:
    checkpoint_id: int | None
    created_at: str
    covered: int           # instances the checkpoint covers
    problems: list[Finding]
    unproven: list[Finding] = field(default_factory=list)  # notes, not failures (audit/instance_row.py)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_document(session: Session, document: dict, public_key: Ed25519PublicKey,
                    progress=None, instance_ids=None) -> CheckpointResult:
    """Check a checkpoint file: its signature under `public_key`, its root
    over its leaves, that every leaf's instance (or those of
    `instance_ids` only) still hashes, from its stored events, to the
    signed head and its row agrees with those events, and that no
    instance or event it does not cover claims to predate it."""
    statement = document.get("statement") or {}
    result = CheckpointResult(document.get("id"), str(statement.get("created_at")),
                              len(document.get("leaves") or []), [])
    if document.get("format") != FORMAT or statement.get("format") != FORMAT:
        result.problems.append(Finding(None, None, CHECKPOINT_MISMATCH, f"not an {FORMAT} document"))
        return result
    try:
        public_key.verify(base64.b64decode(document.get("signature", "")), statement_bytes(statement))
    except (InvalidSignature, ValueError):
        result.problems.append(Finding(None, None, CHECKPOINT_MISMATCH,
                                       "the signature does not verify with this public key: the checkpoint "
                                       "was altered or signed by another key"))
        return result
    if statement.get("key_id") != key_id(public_key):
        result.problems.append(Finding(None, None, CHECKPOINT_MISMATCH, "the statement names another key"))
        return result
    leaves = [Leaf(int(i), int(s), str(h)) for i, s, h in document.get("leaves") or []]
    root = merkle_root([leaf_hash(leaf.bytes) for leaf in leaves]).hex()
    if root != statement.get("root") or len(leaves) != statement.get("tree_size"):
        result.problems.append(Finding(None, None, CHECKPOINT_MISMATCH,
                                       "the leaves do not make the signed root: the leaf list was altered"))
        return result
    check = _LeafCheck(document.get("id"), datetime.fromisoformat(statement["created_at"]))
    covered = {leaf.instance_id for leaf in leaves}
    if instance_ids is not None:
        wanted = set(instance_ids)
        leaves = [leaf for leaf in leaves if leaf.instance_id in wanted]
        result.covered = len(leaves)
    for batch_start in range(0, len(leaves), 500):
        batch = leaves[batch_start:batch_start + 500]
        problems, unproven = check.leaves(session, batch)
        result.problems.extend(problems)
        result.unproven.extend(unproven)
        if progress:
            progress(len(batch))
    result.problems.extend(check.added(session, covered, instance_ids))
    return result


class _LeafCheck:
    """The checks of one checkpoint's leaves against the database."""

    def __init__(self, checkpoint_id, created_at: datetime):
        self.label = f"checkpoint {checkpoint_id}" if checkpoint_id is not None else "the checkpoint"
        self.created_at = as_utc(created_at)
        self.before = self.created_at - GRACE  # an event dated before this predates the checkpoint

    def leaves(self, session: Session, leaves: list[Leaf]) -> tuple[list[Finding], list[Finding]]:
        """(problems, unproven) of some leaves' instances: their chains
        recomputed up to the signed heads, their later events and their
        rows."""
        ids = [leaf.instance_id for leaf in leaves]
        by_instance = read_events(session, ids)
        rows = read_rows(session, ids)
        problems, unproven = [], []
        for leaf in leaves:
            events = by_instance.get(leaf.instance_id, [])
            found = self.leaf(leaf, events)
            problems.extend(found)
            # A row is compared with a history shown to be the signed one (else it would echo the change).
            if not found and leaf.instance_id in rows:
                found, notes = check_row(rows[leaf.instance_id], events)
                problems.extend(found)
                unproven.extend(notes)
        return problems, unproven

    def leaf(self, leaf: Leaf, events: list) -> list[Finding]:
        digest, seq, stored_consistent = GENESIS, 0, True
        for row in events:
            if row.seq > leaf.seq or row.seq != seq + 1:
                break
            # Recomputed from the previous recomputed hash, not the stored one, which is not trusted.
            digest = recomputed_hash(row.hash, digest, leaf.instance_id, row.seq, as_utc(row.at), row.actor_id,
                                     row.kind, row.element_id, row.data)
            stored_consistent = stored_consistent and row.hash == digest
            seq = row.seq
        if seq < leaf.seq:
            return [Finding(leaf.instance_id, seq + 1, EVENT_MISSING,
                            f"{self.label} covers events 1-{leaf.seq}; from event {seq + 1} on they are "
                            "missing or out of sequence")]
        if digest != leaf.head:
            return [Finding(leaf.instance_id, leaf.seq, CHECKPOINT_MISMATCH,
                            f"events 1-{leaf.seq} no longer hash to the head signed in {self.label}: "
                            + _how_rewritten(events[seq - 1].hash, leaf.head, stored_consistent))]
        later = next((row for row in events if row.seq > leaf.seq and as_utc(row.at) < self.before), None)
        if later is not None:
            return [Finding(leaf.instance_id, later.seq, NOT_COVERED,
                            f"sự kiện {later.seq} ghi thời điểm {as_utc(later.at).isoformat()}, trước {self.label} "
                            f"({self.created_at.isoformat()}), nhưng {self.label} chỉ gồm các sự kiện 1-{leaf.seq}"
                            f" / event {later.seq} is dated {as_utc(later.at).isoformat()}, before {self.label}, "
                            f"which covers events 1-{leaf.seq} only: it was added afterwards")]
        return []

    def added(self, session: Session, covered: set[int], instance_ids=None) -> list[Finding]:
        """Instances the checkpoint does not include whose history begins
        before it: added since, with a back-dated history (those it
        includes that are gone are found by `leaves`)."""
        query = (select(AuditEvent.instance_id, func.min(AuditEvent.at))
                 .group_by(AuditEvent.instance_id).having(func.min(AuditEvent.at) < self.before))
        if instance_ids is not None:
            query = query.where(AuditEvent.instance_id.in_(list(instance_ids)))
        problems = []
        for instance_id, first_at in session.execute(query.order_by(AuditEvent.instance_id)):
            if instance_id not in covered:
                first = as_utc(first_at).isoformat()
                problems.append(Finding(
                    instance_id, 1, NOT_COVERED,
                    f"lịch sử của hồ sơ bắt đầu lúc {first}, trước {self.label} ({self.created_at.isoformat()}), "
                    f"nhưng {self.label} không có hồ sơ này / the instance's history begins at {first}, before "
                    f"{self.label}, which does not include it: it was added afterwards with a back-dated history"))
        return problems


def _how_rewritten(stored_head: str, signed_head: str, stored_consistent: bool) -> str:
    """What was done to a history whose events no longer hash to the
    signed head, told by the stored hash column."""
    if stored_head == signed_head:
        return ("an event's content was changed and the stored hashes were left as they were "
                "(the chain check reports which)")
    if stored_consistent:
        return "an event up to here was rewritten and every hash after it recomputed"
    return "an event up to here was rewritten, and the stored hashes were changed but do not match the events"
