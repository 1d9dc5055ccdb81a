"""Producers' portal: a producer's products and where each stands in its
cycle, registering products (and, for a commune officer, producers),
starting a cycle, and the product's evidence files.

Every route checks on the server who may see what and answers 404 for
anything outside the user's own products or area, so the existence of
other producers' products is not revealed either.
"""
from __future__ import annotations

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
from sqlalchemy import select
from werkzeug.routing import BuildError

from engine.access import may_act, registering_communes
from engine.errors import AlreadyInCycle, NoActiveDefinition, NotAllowed, RegistrationClosed
from engine.forms import CONTROL_CHARACTERS
from programme import products
from programme.invitations import enrolment_filename, enrolment_ics
from storage.criteria import sets_by_code
from storage.documents import (
    MAX_SIZE,
    SAFE_CONTENT_TYPES,
    DocumentRefused,
    DocumentStore,
    check_upload,
    clean_filename,
)
from storage.models import PRODUCER_KINDS, Document, Enrolment, InboxTask, Producer, Product, TaskDraft, User
from web import labels
from web.auth import signed_in_user
from web.context import actor, bpmn_engine, db, id_from
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
}


@portal.context_processor
def template_labels():
    return {"step_labels": labels.STEP_LABELS, "state_labels": labels.STATE_LABELS, "kind_labels": labels.KIND_LABELS,
            "registration_forms": REGISTRATION_FORMS, "channel_labels": labels.CHANNEL_LABELS,
            "criteria_sets": sets_by_code(), "role_label": _role_label, "task_url": _task_url,
            "may_act_on": _may_act_on}


def _role_label(role: str) -> str:
    return labels.ROLE_LABELS.get(role, role)


def _task_url(task_id: str) -> str:
    # The task page belongs to the inbox blueprint; fall back to its fixed
    # path while that endpoint is not registered.
    try:
        return url_for("inbox.task", task_id=task_id)
    except BuildError:
        return f"/inbox/tasks/{task_id}"


def _may_act_on(waiting: products.Waiting) -> bool:
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
    with db().transaction() as session:
        producers = products.managed_producers(session, actor())
        items = products.summaries(session, producers)
    return render_template("portal/index.html", items=items, producers=producers,
                           is_commune_officer=bool(registering_communes(actor())))


# --- one product -------------------------------------------------------------

def _product_or_404(session, product_id: int, manage: bool = False) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        abort(404)
    allowed = (products.may_manage(actor(), product.producer) if manage
               else products.may_view(session, actor(), product.producer))
    if not allowed:
        abort(404)
    return product


def _render_product(product_id: int, status: int = 200, upload_error: str | None = None,
                    start_form: str = "01"):
    with db().transaction() as session:
        product = _product_or_404(session, product_id)
        view = products.detail(session, product)
        manager = products.may_manage(actor(), product.producer)
        startable = manager and products.can_start(session, product.id, bpmn_engine().clock().year)
    return render_template("portal/product.html", view=view, item=view.summary, manager=manager,
                           startable=startable, upload_error=upload_error, start_form=start_form,
                           max_mb=MAX_SIZE // (1024 * 1024)), status


@portal.get("/products/<int:product_id>")
@login_required
def product(product_id: int):
    return _render_product(product_id)


@portal.route("/products/new", methods=["GET", "POST"])
@login_required
def new_product():
    with db().transaction() as session:
        producers = [(p.id, p.name) for p in products.managed_producers(session, actor())]
    if not producers:
        abort(404)
    form = {"producer_id": str(producers[0][0]), "name": "", "group_code": "", "registration_form": "01"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form.update({key: request.form.get(key, "").strip() for key in form})
        codes = products.product_errors(form["name"], form["group_code"]) | _control_characters(form, ("name",))
        if form["producer_id"] not in {str(pid) for pid, _name in producers}:
            codes["producer_id"] = "unknown_producer"
        if form["registration_form"] not in REGISTRATION_FORMS:
            codes["registration_form"] = "unknown_form"
        errors = _errors(codes)
        if not errors:
            with db().transaction() as session:
                producer = next(p for p in products.managed_producers(session, actor())
                                if p.id == int(form["producer_id"]))
                product_id = products.register_product(session, producer, form["name"], form["group_code"]).id
            # The product is committed first: if registration is closed it
            # stays registered and its cycle can be started later.
            flash(_("Đã đăng ký sản phẩm."), "info")
            _start(product_id, form["registration_form"])
            return redirect(url_for("portal.product", product_id=product_id))
    return render_template("portal/new_product.html", form=form, errors=errors, producers=producers), \
        (400 if errors else 200)


@portal.post("/products/<int:product_id>/start")
@login_required
def start(product_id: int):
    with db().transaction() as session:
        _product_or_404(session, product_id, manage=True)
    registration_form = request.form.get("registration_form", "01")
    if registration_form not in REGISTRATION_FORMS:
        registration_form = "01"
    _start(product_id, registration_form)
    return redirect(url_for("portal.product", product_id=product_id))


def _start(product_id: int, registration_form: str) -> bool:
    """Start the product's cycle for this year; flashes what happened."""
    try:
        result = bpmn_engine().start_product(product_id, actor())
    except AlreadyInCycle:
        flash(_("Sản phẩm đã có chu trình năm nay."), "error")
        return False
    except RegistrationClosed:
        flash(_("Địa bàn chưa mở đăng ký ý tưởng sản phẩm. Sản phẩm đã được lưu; "
                "hãy bắt đầu chu trình khi đợt đăng ký mở."), "error")
        return False
    except NoActiveDefinition:
        flash(_("Chưa có quy trình OCOP nào được áp dụng cho tỉnh này."), "error")
        return False
    except NotAllowed:
        abort(404)
    _prefill_registration_form(result.instance_id, registration_form)
    flash(_("Đã bắt đầu chu trình OCOP năm nay cho sản phẩm."), "info")
    return True


def _prefill_registration_form(instance_id: int, registration_form: str) -> None:
    """The choice new / existing product is asked again by the idea
    registration task: save it as the owner's draft of that task so the
    form opens with it filled in (the inbox's draft format: name -> [values])."""
    with db().transaction() as session:
        row = session.execute(
            select(InboxTask.id, Producer.owner_user_id).join(Producer, Producer.id == InboxTask.producer_id)
            .where(InboxTask.instance_id == instance_id, InboxTask.form_key == "register_idea")).first()
        if row is None or row.owner_user_id is None:
            return
        if not session.scalar(select(TaskDraft.id).where(TaskDraft.task_id == row.id,
                                                         TaskDraft.user_id == row.owner_user_id)):
            session.add(TaskDraft(task_id=row.id, user_id=row.owner_user_id,
                                  data={"registration_form": [registration_form]}, saved_at=bpmn_engine().clock()))


# --- documents --------------------------------------------------------------------

def _store() -> DocumentStore:
    return DocumentStore(current_app.config["UPLOAD_DIR"])


@portal.post("/products/<int:product_id>/documents")
@login_required
def upload(product_id: int):
    with db().transaction() as session:
        _product_or_404(session, product_id, manage=True)
    upload = request.files.get("file")
    filename = clean_filename(upload.filename if upload else "")
    # Read one byte past the limit: enough to know the file is too big
    # without holding more of it.
    data = upload.stream.read(MAX_SIZE + 1) if upload else b""
    try:
        content_type = check_upload(filename, data)
    except DocumentRefused as refused:
        return _render_product(product_id, 400, upload_error=str(REFUSALS[refused.reason]))
    # Bytes first, row second: if the row is not written the stored file is
    # only an unreferenced copy, never a row pointing at nothing.
    digest = _store().put(data)
    with db().transaction() as session:
        product = _product_or_404(session, product_id, manage=True)
        products.add_document(session, product, actor().user_id, digest, filename, content_type,
                              len(data), bpmn_engine().clock())
    flash(_("Đã tải lên tệp %(name)s.", name=filename), "info")
    return redirect(url_for("portal.product", product_id=product_id) + "#documents")


@portal.get("/documents/<int:document_id>")
@login_required
def document(document_id: int):
    with db().transaction() as session:
        row = session.get(Document, document_id)
        if row is None:
            abort(404)
        _product_or_404(session, row.product_id)
        sha256, filename, stored_type = row.sha256, row.filename, row.content_type
    path = _store().path(sha256)
    if not path.is_file():
        abort(404)
    # Always a download, never rendered: only the few inert types keep their
    # label, anything else is plain bytes.
    mimetype = stored_type if stored_type in SAFE_CONTENT_TYPES else "application/octet-stream"
    response = send_file(path, mimetype=mimetype, as_attachment=True, download_name=filename,
                         conditional=True, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox; frame-ancestors 'none'"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- training invitations ------------------------------------------------------------

@portal.get("/enrolments/<int:enrolment_id>.ics")
@login_required
def enrolment_calendar(enrolment_id: int):
    """The enrolment's training as an iCalendar file, for whoever may read
    the product it belongs to."""
    with db().transaction() as session:
        enrolment = session.get(Enrolment, enrolment_id)
        producer = session.get(Producer, enrolment.producer_id) if enrolment else None
        if producer is None or not products.may_view(session, actor(), producer):
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
    with db().transaction() as session:
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
    with db().transaction() as session:
        communes = products.all_communes(session)
    return _registration(communes, self_signup=True)


def _registration(communes: list[tuple[int, str]], self_signup: bool):
    fields = ("commune_id", "name", "kind", "username", "full_name", "product_name", "group_code")
    form = dict.fromkeys(fields, "")
    form["commune_id"] = str(communes[0][0]) if communes else ""
    errors: dict[str, str] = {}
    if request.method == "POST":
        form.update({key: request.form.get(key, "").strip() for key in fields})
        password = request.form.get("password", "")
        commune_id = id_from(form["commune_id"]) or 0
        if commune_id not in {cid for cid, _name in communes}:
            commune_id = 0  # only communes offered on the page: reported as unknown
        try:
            unprintable = _control_characters(form, ("name", "full_name", "product_name"))
            if unprintable:
                raise products.InvalidRegistration(unprintable)
            with db().transaction() as session:
                product = products.register_producer(
                    session, commune_id, form["name"], form["kind"], form["username"], form["full_name"],
                    password, form["product_name"], form["group_code"])
                product_id, owner_id = product.id, product.producer.owner_user_id
                owner = signed_in_user(session, session.get(User, owner_id)) if self_signup else None
        except products.InvalidRegistration as invalid:
            errors = _errors(invalid.errors)
        else:
            if self_signup:
                login_user(owner)
                flash(_("Đã tạo tài khoản. Hãy bắt đầu chu trình OCOP cho sản phẩm khi địa bàn mở đăng ký."),
                      "info")
            else:
                flash(_("Đã đăng ký chủ thể %(name)s và tài khoản %(username)s.",
                        name=form["name"], username=form["username"].lower()), "info")
            return redirect(url_for("portal.product", product_id=product_id))
    return render_template("portal/register.html", form=form, errors=errors, communes=communes,
                           kinds=PRODUCER_KINDS, self_signup=self_signup), (400 if errors else 200)
