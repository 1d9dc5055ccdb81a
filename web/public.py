"""Pages anyone may read: the programme at a glance and the catalogue of
promoted (3-star-and-up) products. Aggregates and public listings only."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select, text

from storage.criteria import sets_by_code
from storage.models import InboxTask, Jurisdiction, ProcessInstance, PromotionListing
from web import labels

public = Blueprint("public", __name__)



def _db():
    return current_app.extensions["ocop_engine"].db


@public.get("/")
def home():
    """Each person lands where their work is."""
    if current_user.is_authenticated:
        if current_user.has_role("auditor"):  # acts on no task: the inbox would be empty
            return redirect(url_for("audit.index"))
        if current_user.is_officer:
            return redirect(url_for("inbox.index"))
        if current_user.is_producer:
            return redirect(url_for("portal.index"))
    return redirect(url_for("public.overview"))


@public.get("/healthz")
def healthz():
    try:
        with _db().transaction() as session:
            session.execute(text("SELECT 1"))
    except Exception as err:  # noqa: BLE001 - any database failure means "not healthy"
        return jsonify(status="unavailable", database=type(err).__name__), 503
    return jsonify(status="ok", database="ok")


@public.get("/overview")
def overview():
    with _db().transaction() as session:
        running = dict(session.execute(
            select(ProcessInstance.current_step, func.count())
            .where(ProcessInstance.process_id == "ocop_product_cycle", ProcessInstance.status == "running")
            .group_by(ProcessInstance.current_step)).all())
        ended = dict(session.execute(
            select(ProcessInstance.end_event, func.count())
            .where(ProcessInstance.process_id == "ocop_product_cycle", ProcessInstance.status == "completed")
            .group_by(ProcessInstance.end_event)).all())
        waiting = session.execute(select(InboxTask.role, func.count()).group_by(InboxTask.role)).all()
    return render_template("overview.html", running=running, ended=ended, waiting=waiting,
                           steps=labels.STEP_LABELS, end_labels=labels.END_LABELS,
                           role_labels=labels.ROLE_LABELS)


@public.get("/catalogue")
def catalogue():
    """Promoted products, filtered by province, product group and stars."""
    stars = request.args.get("stars", type=int)
    province = request.args.get("province", type=int)
    group = request.args.get("group", "")
    with _db().transaction() as session:
        query = (select(PromotionListing, Jurisdiction.name)
                 .join(Jurisdiction, Jurisdiction.id == PromotionListing.province_id)
                 .order_by(PromotionListing.stars.desc(), PromotionListing.product_name))
        if stars in (3, 4, 5):
            query = query.where(PromotionListing.stars == stars)
        if province:
            query = query.where(PromotionListing.province_id == province)
        if group in sets_by_code():
            query = query.where(PromotionListing.group_code == group)
        listings = session.execute(query.limit(500)).all()
        provinces = session.execute(select(Jurisdiction.id, Jurisdiction.name)
                                    .where(Jurisdiction.level == "province").order_by(Jurisdiction.name)).all()
    return render_template("catalogue.html", listings=listings, stars=stars, province=province, group=group,
                           provinces=provinces, groups=sets_by_code())
