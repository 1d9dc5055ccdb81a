"""Signed checkpoints and verification, in the browser.

Auditors and administrators list the checkpoints, issue one on demand and
download each as the JSON file they keep outside the system, with the
public key to check it. Anyone who may read an instance's audit history
(engine.audit_search.scope_of) may verify that instance: its chain, its
replay, and its leaf in the latest checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from engine import audit_search, checkpoints, verification
from storage.models import AuditCheckpoint, ProcessInstance
from web.auth import actor, db, engine, require_role

checkpoint_pages = Blueprint("checkpoints", __name__, url_prefix="/audit")

ISSUERS = ("auditor", "admin")


def _key_file() -> Path:
    return Path(current_app.config.get("AUDIT_KEY_FILE") or checkpoints.key_path())


def _public_key():
    """The configured key's public half, or None when no key is set up."""
    try:
        return checkpoints.load_private_key(_key_file()).public_key()
    except (OSError, ValueError):
        return None


@checkpoint_pages.get("/checkpoints/")
@login_required
def index():
    require_role(*ISSUERS)
    with db().transaction() as session:
        rows = session.execute(select(AuditCheckpoint.id, AuditCheckpoint.created_at, AuditCheckpoint.tree_size,
                                      AuditCheckpoint.event_count, AuditCheckpoint.root_hash,
                                      AuditCheckpoint.key_id)
                               .order_by(AuditCheckpoint.id.desc()).limit(200)).all()
    public_key = _public_key()
    return render_template("checkpoints/index.html", checkpoints=rows, public_key=public_key,
                           key_id=checkpoints.key_id(public_key) if public_key else None)


@checkpoint_pages.post("/checkpoints/")
@login_required
def issue():
    require_role(*ISSUERS)
    try:
        key = checkpoints.load_private_key(_key_file())
    except (OSError, ValueError):
        flash(_("Chưa có khóa ký kiểm toán: chạy `ocop init` hoặc đặt OCOP_AUDIT_KEY_FILE."), "error")
        return redirect(url_for("checkpoints.index"))
    with db().transaction() as session:
        checkpoint = checkpoints.issue(session, key, engine().clock(), created_by=actor().user_id)
        flash(_("Đã ký mốc kiểm toán %(id)s: %(n)s quy trình, %(events)s sự kiện.", id=checkpoint.id,
                n=checkpoint.tree_size, events=checkpoint.event_count), "success")
    return redirect(url_for("checkpoints.index"))


@checkpoint_pages.get("/checkpoints/<int:checkpoint_id>.json")
@login_required
def download(checkpoint_id: int):
    require_role(*ISSUERS)
    with db().transaction() as session:
        checkpoint = session.get(AuditCheckpoint, checkpoint_id)
        if checkpoint is None:
            abort(404)
        document = checkpoints.as_file(checkpoint, _public_key())
    return Response(json.dumps(document, ensure_ascii=False, indent=1), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="ocop-checkpoint-{checkpoint_id}.json"'})


@checkpoint_pages.get("/checkpoints/public-key.pem")
@login_required
def public_key():
    require_role(*ISSUERS)
    key = _public_key()
    if key is None:
        abort(404)
    return Response(checkpoints.public_key_pem(key), mimetype="application/x-pem-file",
                    headers={"Content-Disposition": 'attachment; filename="ocop-audit-public-key.pem"'})


@checkpoint_pages.post("/instances/<int:instance_id>/verify")
@login_required
def verify_instance(instance_id: int):
    scope = audit_search.scope_of(actor())
    if scope is None:
        abort(403)
    with db().transaction() as session:
        areas = session.scalar(select(ProcessInstance.areas).where(ProcessInstance.id == instance_id))
        if areas is None or not scope.covers(areas):
            abort(404)
        latest = checkpoints.latest(session)
        document = checkpoints.as_file(latest) if latest is not None else None
    report = verification.verify_instance(engine(), instance_id)
    covered, key = None, _public_key()
    if document is not None and key is not None:
        with db().transaction() as session:
            result = checkpoints.verify_document(session, document, key, instance_ids=[instance_id])
        report.problems.extend(result.problems)
        covered = result if result.covered else None
    return render_template("checkpoints/verified.html", instance_id=instance_id, report=report,
                           checkpoint=covered, user=current_user)
