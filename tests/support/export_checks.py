"""The outside party's check of an exported history (audit/export.py):
standard library only -- hashlib, json and csv, no project code -- so that
it shows what anyone holding the file can verify. Used by
tests/test_export.py and tests/test_audit_pages.py (the downloads of the
audit pages)."""
import csv
import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path

GENESIS = "0" * 64


def _body(instance_id, seq, at, actor, kind, element, data) -> str:
    return json.dumps({"instance": instance_id, "seq": seq, "at": at, "actor": actor, "kind": kind,
                       "element": element, "data": data},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _check_chain(instance_id, events, head=None, count=None) -> list[str]:
    problems = []
    prev = GENESIS
    for number, e in enumerate(events, start=1):
        if e["seq"] != number:
            problems.append(f"{instance_id}: event {number} missing (found seq {e['seq']})")
        digest = hashlib.sha256((prev + _body(instance_id, e["seq"], e["at"], e["actor"], e["kind"],
                                              e["element"], e["data"])).encode("utf-8")).hexdigest()
        if e["prev_hash"] != prev or e["hash"] != digest:
            problems.append(f"{instance_id}: event {e['seq']} does not match its hash")
        prev = e["hash"]
    if head is not None and prev != head:
        problems.append(f"{instance_id}: the last hash is not the head {head}")
    if count is not None and len(events) != count:
        problems.append(f"{instance_id}: {len(events)} events, the head says {count}")
    return problems


def verify_json_export(path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    if document.get("format") != "ocop-audit-export/1":
        return ["unknown format"]
    problems = []
    for instance in document["instances"]:
        problems += _check_chain(instance["instance_id"], instance["events"], instance["audit_head"],
                                 instance["audit_seq"])
    return problems


def csv_rows(lines) -> list[dict]:
    """The event rows of a CSV export (lines: a file or a list of lines),
    past its leading "#" note."""
    return list(csv.DictReader(itertools.dropwhile(lambda line: line.startswith("#"), lines)))


def verify_csv_export(path) -> list[str]:
    by_instance = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv_rows(handle):
            by_instance.setdefault(int(row["instance_id"]), []).append({
                "seq": int(row["seq"]), "at": row["at"], "actor": int(row["actor"]) if row["actor"] else None,
                "kind": row["kind"], "element": row["element"] or None, "data": json.loads(row["data"]),
                "prev_hash": row["prev_hash"], "hash": row["hash"]})
    problems = []
    for instance_id, events in by_instance.items():
        problems += _check_chain(instance_id, events)
    return problems


def run_checker(path, public_key_path=None) -> subprocess.CompletedProcess:
    """scripts/verify_export.py as an outside party runs it: its own process."""
    args = [sys.executable, str(Path(__file__).resolve().parents[2] / "scripts" / "verify_export.py"), str(path)]
    if public_key_path:
        args += ["--public-key", str(public_key_path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)
