"""The printable OCOP certificate (/certificates/<id>), for its producer
and the officers of its area (engine.access.may_see_certificate; anyone
else gets 404, as for a certificate that does not exist): an A4 page with
the national heading, the product, producer and address, the stars, the
decision, the validity, the number and a QR code to the public
verification page (web/public.py). The labels the certificate pages share
live here too (status, kind, issuing authority).

The QR code is an inline SVG drawn on the server (the `qrcode` package's
path image: no Pillow, no image request, nothing from another host).
"""
from __future__ import annotations

import qrcode
import qrcode.image.svg
from flask import Blueprint, abort, render_template, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from markupsafe import Markup

from programme import certificate_views
from programme.score_sheets import local_today
from storage.criteria import sets_by_code
from web import labels
from web.context import actor, bpmn_engine, reading

certificates = Blueprint("certificates", __name__, url_prefix="/certificates")

# A certificate's status as the verification page says it (the revoked and
# replaced ones add the decision or the newer certificate).
STATUS_LABELS = {"valid": _l("Còn hiệu lực"), "expired": _l("Hết hiệu lực"), "revoked": _l("Đã bị thu hồi"),
                 "replaced": _l("Đã được thay thế")}
KIND_LABELS = {"new": _l("Công nhận lần đầu"), "re_recognised": _l("Đánh giá, phân hạng lại"),
               "upgraded": _l("Nâng hạng")}
AUTHORITY_LABELS = {"district": _l("Ủy ban nhân dân huyện"), "province": _l("Ủy ban nhân dân tỉnh"),
                    "ministry": _l("Bộ Nông nghiệp và Môi trường")}


def certificate_labels() -> dict:
    """What the certificate templates (here and web/public.py) look labels up in."""
    return {"certificate_status_labels": STATUS_LABELS, "certificate_kind_labels": KIND_LABELS,
            "authority_labels": AUTHORITY_LABELS, "criteria_sets": sets_by_code(), "group_name": group_name}


def group_name(code: str) -> str:
    """A criteria set's (product group's) name in the page's language."""
    entry = sets_by_code().get(code)
    if entry is None:
        return code
    return entry.get("name_en") if get_locale().language == "en" and entry.get("name_en") else entry["name_vi"]


@certificates.context_processor
def template_labels():
    return certificate_labels()


def qr_svg(text: str) -> Markup:
    """`text` as a QR code, an inline SVG element (medium error correction:
    a printed certificate gets creased and stamped)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2,
                         image_factory=qrcode.image.svg.SvgPathImage)
    code.add_data(text)
    code.make(fit=True)
    svg = code.make_image().to_string(encoding="unicode")
    # Sized by the stylesheet, not by the millimetres qrcode writes.
    svg = svg.replace("<svg ", '<svg class="qr" role="img" focusable="false" ', 1)
    return Markup(svg)  # noqa: S704 - drawn here from the URL's modules, no text of it is markup


@certificates.get("/<int:certificate_id>")
@login_required
def show(certificate_id: int):
    with reading() as session:
        found = certificate_views.readable_certificate(session, actor(), certificate_id,
                                                       local_today(bpmn_engine().clock()))
    if found is None:
        abort(404)
    verify_url = url_for("public.verify", code=found.verify_code, _external=True)
    return render_template("certificates/show.html", certificate=found, verify_url=verify_url,
                           qr=qr_svg(verify_url), kind_labels=labels.KIND_LABELS)
