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
3. when the export carries a signed checkpoint for the instance (JSON
   only): the Ed25519 signature over the checkpoint statement, the Merkle
   inclusion proof of the leaf "instance:seq:head" up to the signed root
   (RFC 6962), and that the chain recomputed from the exported events
   reaches that signed head at that seq. Events after the checkpoint are
   covered by the chain only.

Exit status 0 when everything holds, 1 otherwise, each problem printed with
its instance and event.
"""
from __future__ import annotations

import argparse
import base64
import csv
import hashlib
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


def check_checkpoint(instance: dict, recomputed: dict[int, str], public_key) -> list[str]:
    proof = instance.get("checkpoint")
    if not proof:
        return []
    instance_id = instance["instance_id"]
    where = f"instance {instance_id}, checkpoint {proof.get('checkpoint')}"
    statement = proof["statement"]
    signed = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    problems = []
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
    return problems


def load_public_key(pem: bytes):
    from cryptography.hazmat.primitives import serialization
    return serialization.load_pem_public_key(pem)


def read_csv(path: str) -> list[dict]:
    instances: dict[int, dict] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
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
    parser.add_argument("--public-key", help="PEM public key to check checkpoint signatures "
                        "(default: the key in the export, whose fingerprint you should compare with yours)")
    args = parser.parse_args()
    if args.export.endswith(".csv"):
        instances, public_key = read_csv(args.export), None
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
    problems, events, proofs = [], 0, 0
    for instance in instances:
        found, recomputed = check_chain(instance)
        problems += found + check_checkpoint(instance, recomputed, public_key)
        events += len(instance["events"])
        proofs += bool(instance.get("checkpoint"))
    for problem in problems:
        print(problem)
    print(f"{len(instances)} instances, {events} events, {proofs} checkpoint proofs: "
          + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
