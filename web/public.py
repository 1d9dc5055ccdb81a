"""Pages anyone may read: the programme at a glance and the catalogue of
promoted (3-star-and-up) products (programme/catalogue.py: aggregates and
public listings only), the health check, and where each person lands."""
from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from programme import catalogue as listings
from storage.criteria import sets_by_code
from web import labels
from web.context import query_int, reading

public = Blueprint("public", __name__)


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
        with reading() as session:
            listings.check_database(session)
    except Exception as err:  # noqa: BLE001 - any database failure means "not healthy"
        return jsonify(status="unavailable", database=type(err).__name__), 503
    return jsonify(status="ok", database="ok")


@public.get("/overview")
def overview():
    with reading() as session:
        figures = listings.programme_overview(session)
    return render_template("overview.html", running=figures.running, ended=figures.ended, waiting=figures.waiting,
                           steps=labels.STEP_LABELS, end_labels=labels.END_LABELS,
                           role_labels=labels.ROLE_LABELS)


@public.get("/catalogue")
def catalogue():
    """Promoted products, filtered by province, product group and stars."""
    stars = query_int("stars", 1, 5)
    province = query_int("province")
    group = request.args.get("group", "")
    with reading() as session:
        found = listings.promoted_products(session, stars, province, group if group in sets_by_code() else None)
        provinces = listings.provinces(session)
    return render_template("catalogue.html", listings=found, stars=stars, province=province, group=group,
                           provinces=provinces, groups=sets_by_code())
