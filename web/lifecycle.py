"""Pages of a certificate's life (issue 16, helper B1): the certificate
panel on the producer's product page (the re-evaluation window, the
"Đề nghị nâng hạng" button), a certificate's life page (its dates and
instances), the producer's upgrade request, and what changed since the
recognition on the council's sheet page of an upgrade.

Reads go through programme/certificates.py query functions inside
`reading()`; the request goes through its `start_upgrade` use case. A
certificate the user may not see answers 404, as a product does.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from engine.errors import NotAllowed
from programme import certificates
from web.context import actor, bpmn_engine, reading

lifecycle = Blueprint("lifecycle", __name__, url_prefix="/lifecycle")

# programme.certificates.UPGRADE_REFUSALS, for the reader's language.
REFUSALS = {
    "not_valid": _l("Giấy chứng nhận không còn hiệu lực: không đề nghị nâng hạng được."),
    "five_stars": _l("Sản phẩm đã đạt 5 sao, hạng cao nhất."),
    "upgrade_running": _l("Sản phẩm đang có một đề nghị nâng hạng chưa xong."),
    "reevaluation": _l("Sản phẩm đang được đánh giá, phân hạng lại: chờ kết quả trước khi đề nghị nâng hạng."),
    "not_producer": _l("Chỉ chủ thể sở hữu sản phẩm được đề nghị nâng hạng."),
}
WINDOW_STATES = {"before": _l("chưa mở"), "open": _l("đang nhận hồ sơ"), "closed": _l("đã hết hạn nhận hồ sơ"),
                 "expired": _l("giấy chứng nhận đã hết hạn")}
STATUSES = {"valid": _l("Còn hiệu lực"), "expired": _l("Hết hiệu lực"), "revoked": _l("Đã thu hồi"),
            "replaced": _l("Đã được thay thế")}
KINDS = {"new": _l("Công nhận lần đầu"), "re_recognised": _l("Công nhận lại"), "upgraded": _l("Nâng hạng")}
PROCESSES = {"ocop_certificate": _l("Hiệu lực giấy chứng nhận"), "ocop_upgrade": _l("Nâng hạng")}
INSTANCE_STATUSES = {"running": _l("đang thực hiện"), "completed": _l("đã xong"), "cancelled": _l("đã hủy")}


@lifecycle.app_context_processor
def certificate_helpers():
    """For the hooks in the product page and the task page."""
    return {"certificate_panel": _certificate_panel, "upgrade_changes_of": _upgrade_changes,
            "lifecycle_labels": {"refusals": REFUSALS, "window": WINDOW_STATES, "status": STATUSES, "kind": KINDS,
                                 "process": PROCESSES, "instance": INSTANCE_STATUSES}}


def _certificate_panel(product_id: int):
    with reading() as session:
        return certificates.product_certificate(session, actor(), product_id,
                                                certificates.local_today(bpmn_engine()))


def _upgrade_changes(instance_id: int):
    with reading() as session:
        return certificates.upgrade_changes(session, instance_id)


@lifecycle.get("/certificates/<int:certificate_id>")
@login_required
def certificate(certificate_id: int):
    with reading() as session:
        life = certificates.readable_certificate_life(session, actor(), certificate_id)
        if life is None:
            abort(404)
        today = certificates.local_today(bpmn_engine())
        return render_template("lifecycle/certificate.html", life=life, c=life.certificate,
                               window_state=life.window.state(today))


@lifecycle.post("/certificates/<int:certificate_id>/upgrade")
@login_required
def request_upgrade(certificate_id: int):
    with reading() as session:
        life = certificates.readable_certificate_life(session, actor(), certificate_id)
    if life is None:
        abort(404)
    product_page = url_for("portal.product", product_id=life.certificate.product_id)
    try:
        certificates.start_upgrade(bpmn_engine(), actor(), certificate_id)
    except (certificates.UnknownCertificate, NotAllowed):
        abort(404)  # not the producer's own: nothing to say about it
    except certificates.CertificateRefused as refused:
        flash(str(REFUSALS.get(refused.code, _("Không đề nghị nâng hạng được."))), "error")
        return redirect(product_page, 303)
    flash(_("Đã gửi đề nghị nâng hạng. Mời nộp hồ sơ: những gì đã thay đổi từ lần công nhận trước."), "success")
    return redirect(product_page, 303)
