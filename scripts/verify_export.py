#!/usr/bin/env python3
"""Verify an ocop-flow audit export on its own, without the application.

    python3 verify_export.py EXPORT.json [--public-key KEY.pem]
    python3 verify_export.py EXPORT.csv

This file deliberately imports nothing from ocop-flow: an outside party
can read it in full, copy it and run it against a downloaded export. It
needs only the Python standard library, and the `cryptography` package
for the signature of a checkpoint.

What it checks, per instance:
1. the hash chain: every event's hash is sha256(prev_hash + canonical
   JSON of the event) and links to the event before it, from 64 zeros;
2. the head: the last event is the instance's audit_seq / audit_head;
3. the export's own fields beside the events, which no hash covers
   (product_id, product_name, definition, version, status), against the
   hashed events that determine them; actor_name is named nowhere in the
   hashed record, so it is reported as unproven;
4. when the export carries a signed checkpoint for the instance (JSON
   only): the Ed25519 signature over the checkpoint statement, the Merkle
   inclusion proof of the leaf "instance:seq:head" up to the signed root
   (RFC 6962), and that the chain recomputed from the exported events
   reaches that signed head at that seq.

With --public-key, every exported event must be under a checkpoint signed
by that key: an instance without a proof, or events after its proof's
seq, fail (sign a checkpoint, then export again). Without it, the key in
the export is used (compare its printed fingerprint with the one you
hold) and the events no checkpoint covers are listed as covered by the
chain only.

A CSV export has no head and no checkpoint proof: only the chains are
checked, so events cut from the end of a history go unseen (use the JSON
export for that); its first row is a note saying so.

Exit status 0 when everything holds, 1 otherwise, each problem printed with
its instance and event.
"""
from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import itertools
import json
import sys

GENESIS = "0" * 64


def event_hash(prev_hash: str, instance_id: int, event: dict) -> str:
    body = json.dumps({"instance": instance_id, "seq": event["seq"], "at": event["at"], "actor": event["actor"],
                       "kind": event["kind"], "element": event["element"], "data": event["data"]},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def check_chain(instance: dict) -> tuple[list[str], dict[int, str]]:
    """Problems, and the recomputed hash after each seq."""
    problems, recomputed = [], {}
    instance_id, prev, expected_seq = instance["instance_id"], GENESIS, 1
    for event in instance["events"]:
        where = f"instance {instance_id}, event {event['seq']}"
        if event["seq"] != expected_seq:
            problems.append(f"{where}: expected event {expected_seq} here (missing or reordered)")
        if event["prev_hash"] != prev:
            problems.append(f"{where}: does not link to the event before it")
        digest = event_hash(prev, instance_id, event)
        if digest != event["hash"]:
            problems.append(f"{where}: content does not match its hash")
        recomputed[event["seq"]] = digest
        prev, expected_seq = digest, event["seq"] + 1
    last_seq = expected_seq - 1
    if (instance.get("audit_seq"), instance.get("audit_head")) != (last_seq, prev):
        problems.append(f"instance {instance_id}: its head (event {instance.get('audit_seq')}) is not the last "
                        f"exported event ({last_seq})")
    return problems, recomputed


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_proof(leaf: bytes, index: int, size: int, proof: list[bytes]) -> bytes:
    """RFC 9162, 2.1.3.2: the root an inclusion proof leads to."""
    if index >= size:
        raise ValueError("leaf index outside the tree")
    fn, sn, node = index, size - 1, hashlib.sha256(b"\x00" + leaf).digest()
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


def check_checkpoint(instance: dict, recomputed: dict[int, str], public_key,
                     required: bool) -> tuple[list[str], list[str]]:
    """(problems, notes) about the instance's checkpoint proof. Events no
    checkpoint covers are a problem when a proof is `required` (a public
    key was given), else a note."""
    instance_id, last_seq = instance["instance_id"], len(instance["events"])
    proof = instance.get("checkpoint")
    if not proof:
        text = f"instance {instance_id}: no checkpoint covers events 1-{last_seq}" + _uncovered(required)
        return ([text], []) if required else ([], [text])
    where = f"instance {instance_id}, checkpoint {proof.get('checkpoint')}"
    statement = proof["statement"]
    signed = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    problems, notes = [], []
    if public_key is not None:
        from cryptography.exceptions import InvalidSignature
        try:
            public_key.verify(base64.b64decode(proof["signature"]), signed)
        except (InvalidSignature, ValueError):
            problems.append(f"{where}: the signature does not verify with the public key")
    leaf_id, seq, head = proof["leaf"]
    if leaf_id != instance_id:
        problems.append(f"{where}: the proof is for instance {leaf_id}")
    try:
        root = root_from_proof(f"{leaf_id}:{seq}:{head}".encode("ascii"), proof["leaf_index"],
                               statement["tree_size"], [bytes.fromhex(h) for h in proof["proof"]])
        if root.hex() != statement["root"]:
            problems.append(f"{where}: the inclusion proof does not lead to the signed root")
    except ValueError as err:
        problems.append(f"{where}: bad inclusion proof: {err}")
    if recomputed.get(seq) != head:
        problems.append(f"{where}: events 1-{seq} do not hash to the head signed in the checkpoint")
    if seq < last_seq:
        (problems if required else notes).append(
            f"{where}: events {seq + 1}-{last_seq} come after the checkpoint" + _uncovered(required))
    return problems, notes


def _uncovered(required: bool) -> str:
    return (" (a public key was given: sign a checkpoint, then export again)" if required
            else ": they are covered by the chain only")


# The export's fields beside the events, which no hash covers: where the
# hashed events say what they must be. (The application's own check of
# the instance row is audit/instance_row.py; this is its outside copy.)
def check_fields(instance: dict) -> list[str]:
    events = instance["events"]
    started = next((e for e in events if e["kind"] == "started"), None)
    if started is None:
        return []
    data = started["data"].get("data") or {}
    migrated = next((e for e in reversed(events) if e["kind"] == "migrated"), None)
    definition = (migrated["data"].get("definition"), migrated["data"].get("to_version")) if migrated else \
        (started["data"].get("definition"), started["data"].get("version"))
    kinds = {e["kind"] for e in events}
    status = "cancelled" if "cancelled" in kinds else "completed" if "finished" in kinds else "running"
    hashed = {"product_id": data.get("product_id"), "product_name": data.get("product_name"),
              "definition": definition[0], "version": definition[1], "status": status}
    return [f"instance {instance['instance_id']}: its {field} is {instance[field]!r}, the hashed events say "
            f"{value!r}" for field, value in hashed.items() if field in instance and instance[field] != value]


def load_public_key(pem: bytes):
    from cryptography.hazmat.primitives import serialization
    return serialization.load_pem_public_key(pem)


def read_csv(path: str) -> list[dict]:
    instances: dict[int, dict] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        # The export's first row is a note for whoever opens the file ("# ..."), not the header.
        for row in csv.DictReader(itertools.dropwhile(lambda line: line.startswith("#"), handle)):
            instance_id = int(row["instance_id"])
            event = {"seq": int(row["seq"]), "at": row["at"],
                     "actor": int(row["actor"]) if row["actor"] else None, "kind": row["kind"],
                     "element": row["element"] or None, "data": json.loads(row["data"]),
                     "prev_hash": row["prev_hash"], "hash": row["hash"]}
            instances.setdefault(instance_id, {"instance_id": instance_id, "events": []})["events"].append(event)
    for instance in instances.values():  # a CSV has no separate head: its last row is taken as the head
        last = instance["events"][-1]
        instance.update(audit_seq=last["seq"], audit_head=last["hash"])
    return list(instances.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("export", help="an ocop-audit-export/1 JSON or CSV file")
    parser.add_argument("--public-key", help="PEM public key: every event must then be under a checkpoint it "
                        "signed (default: the key in the export, whose fingerprint you should compare with yours)")
    args = parser.parse_args()
    notes = ["actor_name: not in the hashed record, unproven (the actor's id is hashed)"]
    is_csv = args.export.endswith(".csv")
    if is_csv:
        if args.public_key:
            print(f"{args.export}: a CSV export carries no checkpoint proofs; verify the JSON export with "
                  "--public-key")
            return 1
        instances, public_key = read_csv(args.export), None
        notes.append("CSV: no head and no checkpoint proof in the file: only the chains are checked, events cut "
                     "from the end of a history go unseen (the JSON export carries both)")
    else:
        with open(args.export, encoding="utf-8") as handle:
            document = json.load(handle)
        if document.get("format") != "ocop-audit-export/1":
            print(f"{args.export}: not an ocop-audit-export/1 file")
            return 1
        instances = document["instances"]
        pem = open(args.public_key, "rb").read() if args.public_key else \
            (document.get("public_key") or "").encode("ascii")
        public_key = load_public_key(pem) if pem else None
        if public_key is not None:
            source = args.public_key or "the export itself (compare the fingerprint with the one you hold)"
            print(f"public key {fingerprint(public_key)} from {source}")
    problems, events, proofs = [], 0, 0
    for instance in instances:
        found, recomputed = check_chain(instance)
        problems += found + check_fields(instance)
        if not is_csv:
            found, later = check_checkpoint(instance, recomputed, public_key, required=bool(args.public_key))
            problems += found
            notes += later
        events += len(instance["events"])
        proofs += bool(instance.get("checkpoint"))
    for problem in problems:
        print(problem)
    for note in notes:
        print(f"note: {note}")
    print(f"{len(instances)} instances, {events} events, {proofs} checkpoint proofs: "
          + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


def fingerprint(public_key) -> str:
    """The key's fingerprint as the application shows it: sha256 of its raw 32 bytes, hex."""
    from cryptography.hazmat.primitives import serialization
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
