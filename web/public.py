"""Pages anyone may read: the programme at a glance, the catalogue of
promoted (3-star-and-up) products whose certificate holds
(programme/catalogue.py: aggregates and public listings only), each such
product's public page and the verification page a certificate's QR code
links to (programme/certificate_views.py: what a certificate says in
public, never scores, sheets, officers or files), the health check, and
where each person lands."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from programme import catalogue as listings
from programme import certificate_views
from programme.score_sheets import local_today
from storage.criteria import sets_by_code
from storage.documents import DocumentStore
from web import labels
from web.certificates import certificate_labels
from web.context import bpmn_engine, query_int, reading
from web.extensions import limiter

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
        found = listings.promoted_products(session, _today(), stars, province,
                                           group if group in sets_by_code() else None)
        provinces = listings.provinces(session)
    return render_template("catalogue.html", listings=found, stars=stars, province=province, group=group,
                           provinces=provinces, groups=sets_by_code())


def _today():
    """Today in Vietnam by the application's clock (a fake one in tests)."""
    return local_today(bpmn_engine().clock())


@public.context_processor
def public_labels():
    return certificate_labels()


@public.get("/san-pham/<int:product_id>")
def product(product_id: int):
    """A product's public page while its certificate holds; the same
    refusal page (404) for a product without one and for no product."""
    with reading() as session:
        found = certificate_views.public_product(session, product_id, _today())
    if found is None:
        return render_template("public/product_missing.html"), 404
    return render_template("public/product.html", product=found, certificate=found.certificate,
                           channel_labels=labels.CHANNEL_LABELS, kind_labels=labels.KIND_LABELS)


# An image served to anyone: runs nothing, loads nothing, framed by nobody.
PHOTO_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"


@public.get("/san-pham/<int:product_id>/anh")
def product_photo(product_id: int):
    """The product's public photo (certificate_views.product_photo), only
    while its public page exists; 404 otherwise."""
    with reading() as session:
        found = certificate_views.public_product(session, product_id, _today())
    if found is None or found.photo is None:
        abort(404)
    path = DocumentStore(current_app.config["UPLOAD_DIR"]).path(found.photo.sha256)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=found.photo.content_type, conditional=True, max_age=0)
    response.headers["Content-Security-Policy"] = PHOTO_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@public.get("/xac-minh/<code>")
def verify(code: str):
    """What a certificate's QR code opens: its number, product, decision and
    status. A code that names no certificate -- malformed or not -- answers
    the same 404 page after the same lookup."""
    with reading() as session:
        found = certificate_views.certificate_by_code(session, code, _today())
    if found is None:
        return render_template("public/verify_missing.html"), 404
    return render_template("public/verify.html", certificate=found, kind_labels=labels.KIND_LABELS)


@public.get("/xac-minh")
@limiter.limit("10 per minute", exempt_when=lambda: not request.args.get("ma"))
def verify_form():
    """Type the verification code printed under the QR code. Not the
    certificate's number: numbers follow each other, so a form answering on
    numbers would list every certificate; the code is unguessable, and the
    form is rate limited all the same."""
    code = request.args.get("ma", "").strip()
    if not code:
        return render_template("public/verify_form.html")
    with reading() as session:  # the same lookup as the link's, malformed codes included
        found = certificate_views.certificate_by_code(session, code[:64], _today())
    if found is None:
        return render_template("public/verify_missing.html"), 404
    return redirect(url_for("public.verify", code=found.verify_code))
