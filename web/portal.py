"""Producers' portal: a producer's products and where each stands in its
cycle (programme/product_status.py), registering products (and, for a
commune officer, producers) and starting a cycle (programme/products.py),
the product's evidence files (programme/documents.py) and training
invitations (background/invitations.py).

Every route checks on the server who may see what and answers 404 for
anything outside the user's own products or area, so the existence of
other producers' products is not revealed either.
"""
from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user
from werkzeug.routing import BuildError

from background.invitations import enrolment_filename, enrolment_ics
from engine.access import may_act, registering_communes
from engine.errors import AlreadyInCycle, NoActiveDefinition, NotAllowed, RegistrationClosed
from engine.forms import CONTROL_CHARACTERS
from programme import certificate_views, documents, product_status, products, score_sheets
from storage.criteria import criteria_set, sets_by_code
from storage.documents import MAX_SIZE, SAFE_CONTENT_TYPES, DocumentRefused, DocumentStore
from storage.models import PRODUCER_KINDS
from web import labels
from web.auth import signed_in_user
from web.certificates import certificate_labels
from web.context import actor, bpmn_engine, db, id_from, reading
from web.extensions import limiter

portal = Blueprint("portal", __name__, url_prefix="/portal")

# Form 01 registers a new product, form 02 an existing one (Decision 1048).
REGISTRATION_FORMS = {"01": _l("Sản phẩm mới (mẫu 01)"), "02": _l("Sản phẩm đã có (mẫu 02)")}
ERRORS = {
    "required": _l("Bắt buộc nhập."),
    "too_long": _l("Quá dài (tối đa 200 ký tự)."),
    "unknown_group": _l("Chọn một nhóm sản phẩm trong danh sách."),
    "unknown_kind": _l("Chọn loại hình chủ thể trong danh sách."),
    "unknown_commune": _l("Chọn xã trong danh sách."),
    "unknown_producer": _l("Chọn chủ thể trong danh sách."),
    "unknown_form": _l("Chọn sản phẩm mới hoặc sản phẩm đã có."),
    "username_format": _l("Tên đăng nhập gồm 3-80 ký tự: chữ thường không dấu, số, dấu chấm, gạch ngang."),
    "username_taken": _l("Tên đăng nhập đã có người dùng."),
    "password_short": _l("Mật khẩu cần ít nhất 8 ký tự."),
    "control_chars": _l("Không được chứa ký tự điều khiển."),
}
REFUSALS = {
    "empty": _l("Chưa chọn tệp hoặc tệp rỗng."),
    "too_big": _l("Tệp quá lớn: tối đa 10 MB mỗi tệp."),
    "type": _l("Chỉ nhận tệp PDF, JPG, PNG, DOCX hoặc XLSX."),
    "content": _l("Nội dung tệp không đúng với phần mở rộng của tên tệp."),
    "name": _l("Tên tệp chứa ký tự điều khiển (kể cả ký tự đảo chiều văn bản); hãy đổi tên tệp rồi tải lên lại."),
    "criteria": _l("Tiêu chí được chọn không thuộc bộ tiêu chí của sản phẩm."),
    "cycle": _l("Chu trình được chọn không phải của sản phẩm này."),
    "date": _l("Ngày hết hiệu lực không hợp lệ."),
}


@portal.context_processor
def template_labels():
    return {"step_labels": labels.STEP_LABELS, "state_labels": labels.STATE_LABELS, "kind_labels": labels.KIND_LABELS,
            "registration_forms": REGISTRATION_FORMS, "channel_labels": labels.CHANNEL_LABELS,
            "criteria_sets": sets_by_code(), "council_levels": labels.COUNCIL_LEVEL_LABELS, "role_label": _role_label,
            "task_url": _task_url, "may_act_on": _may_act_on}


def _role_label(role: str) -> str:
    return labels.ROLE_LABELS.get(role, role)


def _task_url(task_id: str) -> str:
    # The task page belongs to the inbox blueprint; fall back to its fixed
    # path while that endpoint is not registered.
    try:
        return url_for("inbox.task", task_id=task_id)
    except BuildError:
        return f"/inbox/tasks/{task_id}"


def _may_act_on(waiting: product_status.Waiting) -> bool:
    """Link only tasks the user can open."""
    return may_act(actor(), waiting)


def _errors(codes: dict[str, str]) -> dict[str, str]:
    return {field: str(ERRORS.get(code, code)) for field, code in codes.items()}


def _control_characters(form: dict, names: tuple[str, ...]) -> dict[str, str]:
    """Names holding NUL or other control characters: refused here (a
    PostgreSQL text column cannot store a NUL, and no name needs them)."""
    return {name: "control_chars" for name in names if CONTROL_CHARACTERS.search(form[name])}


# --- the list --------------------------------------------------------------

@portal.get("/")
@login_required
def index():
    with reading() as session:
        producers = products.managed_producers(session, actor())
        items = product_status.summaries(session, producers)
        certificates = certificate_views.seen_certificates(session, actor(), [p.id for p in producers],
                                                           score_sheets.local_today(bpmn_engine().clock()))
    return render_template("portal/index.html", items=items, producers=producers,
                           is_commune_officer=bool(registering_communes(actor())), certificates=certificates,
                           **certificate_labels())


# --- one product -------------------------------------------------------------

def _product_or_404(session, product_id: int, manage: bool = False):
    product = products.readable_product(session, actor(), product_id, manage)
    if product is None:
        abort(404)
    return product


def _render_product(product_id: int, status: int = 200, upload_error: str | None = None,
                    start_form: str = "01"):
    with reading() as session:
        product = _product_or_404(session, product_id)
        view = product_status.detail(session, product)
        manager = products.may_manage(actor(), product.producer)
        startable = manager and product_status.can_start(session, product.id, bpmn_engine().clock().year)
        code = score_sheets.set_code(product.group_code)
    return render_template("portal/product.html", view=view, item=view.summary, manager=manager,
                           startable=startable, upload_error=upload_error, start_form=start_form,
                           max_mb=MAX_SIZE // (1024 * 1024), criteria_items=score_sheets.scorable_items(code),
                           samples_required=bool(criteria_set(code).get("sample_products_required")),
                           today=score_sheets.local_today(bpmn_engine().clock())), status


@portal.get("/products/<int:product_id>")
@login_required
def product(product_id: int):
    return _render_product(product_id)


@portal.route("/products/new", methods=["GET", "POST"])
@login_required
def new_product():
    with reading() as session:
        producers = [(p.id, p.name) for p in products.managed_producers(session, actor())]
    if not producers:
        abort(404)
    form = {"producer_id": str(producers[0][0]), "name": "", "group_code": "", "registration_form": "01"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form |= {key: request.form.get(key, "").strip() for key in form}
        codes = products.product_errors(form["name"], form["group_code"]) | _control_characters(form, ("name",))
        if form["producer_id"] not in {str(pid) for pid, _name in producers}:
            codes["producer_id"] = "unknown_producer"
        if form["registration_form"] not in REGISTRATION_FORMS:
            codes["registration_form"] = "unknown_form"
        errors = _errors(codes)
        if not errors:
            # If the cycle cannot start today the product stays registered,
            # and its cycle can be started later.
            started = _started(lambda: products.register_and_start(
                bpmn_engine(), actor(), int(form["producer_id"]), form["name"], form["group_code"],
                form["registration_form"]), registered=True)
            if started is None:  # nothing was registered: the flash says why
                return redirect(url_for("portal.index"))
            return redirect(url_for("portal.product", product_id=started.product_id))
    return render_template("portal/new_product.html", form=form, errors=errors, producers=producers), \
        (400 if errors else 200)


@portal.post("/products/<int:product_id>/start")
@login_required
def start(product_id: int):
    with reading() as session:
        _product_or_404(session, product_id, manage=True)
    registration_form = request.form.get("registration_form", "01")
    if registration_form not in REGISTRATION_FORMS:
        registration_form = "01"
    _started(lambda: products.start_cycle(bpmn_engine(), actor(), product_id, registration_form))
    return redirect(url_for("portal.product", product_id=product_id))


def _started(use_case, registered: bool = False) -> products.Started | None:
    """Run a use case that starts a product's cycle (registering the
    product first when `registered`) and flash what happened; 404 when the
    user may not manage the product."""
    try:
        started = use_case()
    except AlreadyInCycle:
        flash(_("Sản phẩm đã có chu trình năm nay."), "error")
        return None
    except NotAllowed:
        abort(404)
    if registered:
        flash(_("Đã đăng ký sản phẩm."), "info")
    if isinstance(started.refused, RegistrationClosed):
        flash(_("Địa bàn chưa mở đăng ký ý tưởng sản phẩm. Sản phẩm đã được lưu; "
                "hãy bắt đầu chu trình khi đợt đăng ký mở."), "error")
    elif isinstance(started.refused, NoActiveDefinition):
        flash(_("Chưa có quy trình OCOP nào được áp dụng cho tỉnh này."), "error")
    else:
        flash(_("Đã bắt đầu chu trình OCOP năm nay cho sản phẩm."), "info")
    return started


# --- documents --------------------------------------------------------------------

def _store() -> DocumentStore:
    return DocumentStore(current_app.config["UPLOAD_DIR"])


@portal.post("/products/<int:product_id>/documents")
@login_required
def upload(product_id: int):
    with reading() as session:
        _product_or_404(session, product_id, manage=True)
    upload = request.files.get("file")
    # Read one byte past the limit: enough to know the file is too big
    # without holding more of it.
    data = upload.stream.read(MAX_SIZE + 1) if upload else b""
    try:
        valid_until = _date_or_none(request.form.get("valid_until", ""))
        with reading() as session:
            cycle = documents.running_cycle(session, product_id)
        document = documents.add_document(db(), _store(), actor(), product_id, upload.filename if upload else "",
                                          data, bpmn_engine().clock(), criteria=request.form.getlist("criteria"),
                                          valid_until=valid_until, instance_id=cycle)
    except DocumentRefused as refused:
        return _render_product(product_id, 400, upload_error=str(REFUSALS[refused.reason]))
    except NotAllowed:
        abort(404)
    flash(_("Đã tải lên tệp %(name)s.", name=document.filename), "info")
    return redirect(url_for("portal.product", product_id=product_id) + "#documents")


def _date_or_none(text: str):
    """A yyyy-mm-dd date from the form, None when blank; DocumentRefused("date") otherwise."""
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise DocumentRefused("date") from None


# A download runs nothing: sandboxed, loads nothing, framed by nobody.
DOWNLOAD_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"
# Browsers' PDF viewers refuse to work in a sandboxed document: a PDF shown
# inline gets no sandbox, but may still load nothing and be framed by nobody
# (an image shown inline keeps the download's sandbox).
PDF_VIEW_CSP = "default-src 'none'; object-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def _readable_row(document_id: int):
    """The document the user may read (its product's readers), else 404."""
    with reading() as session:
        row = documents.readable_document(session, actor(), document_id)
    if row is None:
        abort(404)
    return row


def _send_stored(row, mimetype: str, inline: bool, csp: str):
    path = _store().path(row.sha256)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=mimetype, as_attachment=not inline, download_name=row.filename,
                         conditional=True, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "private, no-store"
    return response


@portal.get("/documents/<int:document_id>/view")
@login_required
def document_view(document_id: int):
    """The file shown in the browser's own tab (a PDF or an image, opened from
    the score sheet); any other type is the download. Same access as the download."""
    row = _readable_row(document_id)
    if row.content_type not in documents.INLINE_TYPES:
        return redirect(url_for("portal.document", document_id=document_id))
    return _send_stored(row, row.content_type, True,
                        PDF_VIEW_CSP if row.content_type == "application/pdf" else DOWNLOAD_CSP)


@portal.get("/documents/<int:document_id>")
@login_required
def document(document_id: int):
    row = _readable_row(document_id)
    # Always a download, never rendered: only the few inert types keep their
    # label, anything else is plain bytes.
    mimetype = row.content_type if row.content_type in SAFE_CONTENT_TYPES else "application/octet-stream"
    return _send_stored(row, mimetype, False, DOWNLOAD_CSP)


# --- training invitations ------------------------------------------------------------

@portal.get("/enrolments/<int:enrolment_id>.ics")
@login_required
def enrolment_calendar(enrolment_id: int):
    """The enrolment's training as an iCalendar file, for whoever may read
    the product it belongs to."""
    with reading() as session:
        enrolment = product_status.readable_enrolment(session, actor(), enrolment_id)
        if enrolment is None:
            abort(404)
        data, filename = enrolment_ics(session, enrolment), enrolment_filename(enrolment)
    response = current_app.response_class(data, mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- a commune officer registers a producer ------------------------------------

@portal.route("/register", methods=["GET", "POST"])
@login_required
def register():
    """A commune officer registers a producer of one of their communes."""
    communes_ids = registering_communes(actor())
    if not communes_ids:
        abort(404)
    with reading() as session:
        communes = [(unit.id, unit.name) for unit in sorted(
            products.communes_by_id(session, communes_ids).values(), key=lambda u: u.name)]
    return _registration(communes, self_signup=False)


@portal.route("/signup", methods=["GET", "POST"])
@limiter.limit("5 per minute", methods=["POST"])
def signup():
    """A producer registers itself: its account, the producer and a first
    product, in any commune; then it is signed in to its portal."""
    if current_user.is_authenticated:
        return redirect(url_for("portal.index"))
    with reading() as session:
        communes = products.all_communes(session)
    return _registration(communes, self_signup=True)


def _registration(communes: list[tuple[int, str]], self_signup: bool):
    fields = ("commune_id", "name", "kind", "username", "full_name", "product_name", "group_code")
    form = dict.fromkeys(fields, "")
    form["commune_id"] = str(communes[0][0]) if communes else ""
    errors: dict[str, str] = {}
    if request.method == "POST":
        form |= {key: request.form.get(key, "").strip() for key in fields}
        password = request.form.get("password", "")
        commune_id = id_from(form["commune_id"]) or 0
        values = (form["name"], form["kind"], form["username"], form["full_name"], password,
                  form["product_name"], form["group_code"])
        try:
            unprintable = _control_characters(form, ("name", "full_name", "product_name"))
            if unprintable:
                raise products.InvalidRegistration(unprintable)
            registered = (products.sign_up(db(), commune_id, *values) if self_signup
                          else products.register_producer(db(), actor(), commune_id, *values))
        except products.InvalidRegistration as invalid:
            errors = _errors(invalid.errors)
        else:
            if self_signup:
                with reading() as session:
                    login_user(signed_in_user(session, registered.owner))
                flash(_("Đã tạo tài khoản. Hãy bắt đầu chu trình OCOP cho sản phẩm khi địa bàn mở đăng ký."),
                      "info")
            else:
                flash(_("Đã đăng ký chủ thể %(name)s và tài khoản %(username)s.",
                        name=form["name"], username=form["username"].lower()), "info")
            return redirect(url_for("portal.product", product_id=registered.product_id))
    return render_template("portal/register.html", form=form, errors=errors, communes=communes,
                           kinds=PRODUCER_KINDS, self_signup=self_signup), (400 if errors else 200)
