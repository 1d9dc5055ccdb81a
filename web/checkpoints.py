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

from audit import checkpoints
from engine.access import oversight_of
from web.context import actor, bpmn_engine, db, reading

checkpoint_pages = Blueprint("checkpoints", __name__, url_prefix="/audit")


def _overseers_of_everything_only() -> None:
    """A checkpoint covers every province's records: it is for those who
    oversee them all (engine.access.oversight_of: auditors, administrators)."""
    if not oversight_of(actor()).everything:
        abort(403)


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
    _overseers_of_everything_only()
    with reading() as session:
        rows = checkpoints.recent_checkpoints(session, limit=200)
    public_key = public_key_or_none()
    return render_template("checkpoints/index.html", checkpoints=rows, public_key=public_key,
                           key_id=checkpoints.key_id(public_key) if public_key else None)


@checkpoint_pages.post("/checkpoints/")
@login_required
def issue():
    _overseers_of_everything_only()
    try:
        key = checkpoints.load_private_key(_key_file())
    except (OSError, ValueError):
        flash(_("Chưa có khóa ký kiểm toán: chạy `ocop init` hoặc đặt OCOP_AUDIT_KEY_FILE."), "error")
        return redirect(url_for("checkpoints.index"))
    checkpoint = checkpoints.sign(db(), key, bpmn_engine().clock(), created_by=actor().user_id)
    flash(_("Đã ký mốc kiểm toán %(id)s: %(n)s quy trình, %(events)s sự kiện.", id=checkpoint.id,
            n=checkpoint.tree_size, events=checkpoint.event_count), "success")
    return redirect(url_for("checkpoints.index"))


@checkpoint_pages.get("/checkpoints/<int:checkpoint_id>.json")
@login_required
def download(checkpoint_id: int):
    _overseers_of_everything_only()
    with reading() as session:
        checkpoint = checkpoints.checkpoint_by_id(session, checkpoint_id)
    if checkpoint is None:
        abort(404)
    document = checkpoints.as_file(checkpoint, public_key_or_none())
    return Response(json.dumps(document, ensure_ascii=False, indent=1), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="ocop-checkpoint-{checkpoint_id}.json"'})


@checkpoint_pages.get("/checkpoints/public-key.pem")
@login_required
def public_key():
    _overseers_of_everything_only()
    key = public_key_or_none()
    if key is None:
        abort(404)
    return Response(checkpoints.public_key_pem(key), mimetype="application/x-pem-file",
                    headers={"Content-Disposition": 'attachment; filename="ocop-audit-public-key.pem"'})
