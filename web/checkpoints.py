"""Signed checkpoints and verification, in the browser.

Auditors and administrators list the checkpoints, issue one on demand and
download each as the JSON file they keep outside the system, with the
public key to check it. (Verifying one instance is on its history page,
web/audit.py.)
"""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from audit import checkpoints
from storage.models import AuditCheckpoint
from web.context import actor, bpmn_engine, db, require_role

checkpoint_pages = Blueprint("checkpoints", __name__, url_prefix="/audit")

ISSUERS = ("auditor", "admin")


def _key_file() -> Path:
    return Path(current_app.config.get("AUDIT_KEY_FILE") or checkpoints.key_path())


def public_key_or_none():
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
    public_key = public_key_or_none()
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
        checkpoint = checkpoints.issue(session, key, bpmn_engine().clock(), created_by=actor().user_id)
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
        document = checkpoints.as_file(checkpoint, public_key_or_none())
    return Response(json.dumps(document, ensure_ascii=False, indent=1), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="ocop-checkpoint-{checkpoint_id}.json"'})


@checkpoint_pages.get("/checkpoints/public-key.pem")
@login_required
def public_key():
    require_role(*ISSUERS)
    key = public_key_or_none()
    if key is None:
        abort(404)
    return Response(checkpoints.public_key_pem(key), mimetype="application/x-pem-file",
                    headers={"Content-Disposition": 'attachment; filename="ocop-audit-public-key.pem"'})
