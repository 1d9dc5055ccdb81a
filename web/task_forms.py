"""Task forms as web pages: fields derived from the marshmallow schemas of
engine/forms.py, their Vietnamese labels, turning a posted form into the
schema's data, and the schema's errors back into messages per field.

The schemas stay the one description of what a form accepts: this module
only decides how each field is shown (its kind follows from the field's
type and validators) and how browser strings become lists, booleans and
numbers. Anything the schema refuses comes back as FormInvalid from
complete_task and is shown next to its field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import lazy_gettext
from marshmallow import fields as mf
from marshmallow import validate
from werkzeug.datastructures import MultiDict

from engine.forms import FORMS, form_schema
from programme import score_sheets

# Score sheet rows the page offers (empty rows are ignored).
SCORE_ROWS = 7
SCORE_PARTS = ("A", "B", "C")
# Drafts larger than this are refused: a draft is a form, not a file store.
MAX_DRAFT_CHARS = 60_000

FIELD_LABELS = {
    "registration_form": lazy_gettext("Mẫu phiếu đăng ký"),
    "product_description": lazy_gettext("Mô tả sản phẩm"),
    "raw_materials": lazy_gettext("Nguồn nguyên liệu"),
    "expected_market": lazy_gettext("Thị trường dự kiến"),
    "production_capacity": lazy_gettext("Năng lực sản xuất"),
    "form_complete": lazy_gettext("Phiếu đăng ký đầy đủ, hợp lệ"),
    "notes": lazy_gettext("Ghi chú"),
    "decision": lazy_gettext("Kết luận"),
    "reasons": lazy_gettext("Lý do, ý kiến"),
    "criteria_checked": lazy_gettext("Tiêu chí đã xem xét"),
    "plan_summary": lazy_gettext("Tóm tắt phương án sản xuất kinh doanh"),
    "organisation_description": lazy_gettext("Mô tả tổ chức sản xuất (mẫu 04)"),
    "investment_vnd": lazy_gettext("Vốn đầu tư dự kiến (đồng)"),
    "documents": lazy_gettext("Tài liệu kèm theo"),
    "support_to_arrange": lazy_gettext("Hỗ trợ cần bố trí"),
    "visited_on": lazy_gettext("Ngày làm việc tại cơ sở"),
    "activities": lazy_gettext("Nội dung đã hỗ trợ"),
    "support_types": lazy_gettext("Hình thức hỗ trợ"),
    "consultants": lazy_gettext("Chuyên gia, đơn vị tư vấn"),
    "evidence": lazy_gettext("Minh chứng có trong hồ sơ"),
    "self_assessment_score": lazy_gettext("Điểm tự đánh giá (0-100)"),
    "dossier_complete": lazy_gettext("Hồ sơ đầy đủ thành phần"),
    "local_origin": lazy_gettext("Nguyên liệu có nguồn gốc địa phương"),
    "local_labour": lazy_gettext("Sử dụng lao động địa phương"),
    "identity_notes": lazy_gettext("Nhận xét về tính đặc trưng của địa phương"),
    "site_visit": lazy_gettext("Đã khảo sát thực tế tại cơ sở"),
    "lab_tests_ordered": lazy_gettext("Đã yêu cầu kiểm nghiệm bổ sung"),
    "self_assessment_notes": lazy_gettext("Nhận xét về phiếu tự đánh giá của chủ thể (mẫu 02)"),
    "sheets": lazy_gettext("Phiếu chấm điểm của các thành viên hội đồng"),
    "window_opens": lazy_gettext("Ngày mở đăng ký"),
    "window_closes": lazy_gettext("Ngày đóng đăng ký"),
    "channels": lazy_gettext("Hình thức tuyên truyền"),
    "target_producers": lazy_gettext("Số chủ thể dự kiến tham gia"),
    "meetings_held": lazy_gettext("Số hội nghị đã tổ chức"),
    "producers_reached": lazy_gettext("Số chủ thể được tiếp cận"),
    "confirmed": lazy_gettext("Tôi xác nhận biên bản"),
    "recused": lazy_gettext("Tôi xin không chấm sản phẩm này (có xung đột lợi ích)"),
    "conflict_reason": lazy_gettext("Lý do (mối liên hệ với chủ thể)"),
    "comments": lazy_gettext("Nhận xét"),
    "levels": lazy_gettext("Mức đạt theo từng tiêu chí"),
    "eliminations": lazy_gettext("Hồ sơ bị loại khi ..."),
    "self_assessment": lazy_gettext("Tự đánh giá theo từng tiêu chí (mẫu 02)"),
}

FIELD_HELP = {
    "reasons": lazy_gettext("Bắt buộc khi trả lại (ít nhất 5 ký tự)."),
    "documents": lazy_gettext("Mỗi dòng một tài liệu."),
    "investment_vnd": lazy_gettext("Chỉ ghi số, ví dụ 200000000."),
}

# The review_idea checklist: what a district officer weighs in an idea.
IDEA_CRITERIA = {
    "local_material": lazy_gettext("Sử dụng nguyên liệu tại địa phương"),
    "distinctive": lazy_gettext("Sản phẩm có nét đặc trưng của địa phương"),
    "market": lazy_gettext("Có thị trường tiêu thụ"),
    "producer_capacity": lazy_gettext("Chủ thể có năng lực tổ chức sản xuất"),
    "legal_status": lazy_gettext("Chủ thể có tư cách pháp lý phù hợp"),
    "community_benefit": lazy_gettext("Mang lại lợi ích cho cộng đồng"),
}

CHOICE_LABELS = {
    "decision": {"accept": lazy_gettext("Chấp nhận"), "return": lazy_gettext("Trả lại để bổ sung, hoàn thiện"),
                 "forward": lazy_gettext("Đạt, chuyển bước tiếp theo")},
    "registration_form": {"01": lazy_gettext("Mẫu 01 – sản phẩm mới"),
                          "02": lazy_gettext("Mẫu 02 – sản phẩm đã có")},
    "support": {"training": lazy_gettext("Tập huấn"), "consulting": lazy_gettext("Tư vấn"),
                "technology": lazy_gettext("Chuyển giao công nghệ"), "loan": lazy_gettext("Vay vốn"),
                "trade_promotion": lazy_gettext("Xúc tiến thương mại")},
    "evidence": {
        "business_registration": lazy_gettext("Giấy đăng ký kinh doanh"),
        "food_safety_licence": lazy_gettext("Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm"),
        "quality_declaration": lazy_gettext("Công bố chất lượng sản phẩm"),
        "lab_test": lazy_gettext("Phiếu kết quả kiểm nghiệm"),
        "barcode_traceability": lazy_gettext("Mã vạch, truy xuất nguồn gốc"),
        "trademark": lazy_gettext("Nhãn hiệu, sở hữu trí tuệ"),
        "raw_material_origin": lazy_gettext("Nguồn gốc nguyên liệu, liên kết chuỗi"),
        "quality_management": lazy_gettext("Hệ thống quản lý chất lượng"),
        "marketing": lazy_gettext("Hoạt động tiếp thị, quảng bá"),
        "product_story": lazy_gettext("Câu chuyện sản phẩm"),
        "awards": lazy_gettext("Giải thưởng"),
        "product_samples": lazy_gettext("Mẫu sản phẩm"),
    },
    "channels": {"meeting": lazy_gettext("Hội nghị"), "radio": lazy_gettext("Đài phát thanh"),
                 "loudspeaker": lazy_gettext("Loa truyền thanh"), "leaflet": lazy_gettext("Tờ rơi"),
                 "social_media": lazy_gettext("Mạng xã hội"), "training": lazy_gettext("Tập huấn")},
}
CHOICE_LABELS["support_to_arrange"] = CHOICE_LABELS["support_types"] = CHOICE_LABELS["support"]
# Below 90 at the ministry, the province chair's choice (central_fallback, issue 16).
CHOICE_LABELS["choice"] = {"recognise": lazy_gettext("Công nhận 3 hoặc 4 sao theo kết quả đánh giá của Bộ"),
                           "re_evaluate": lazy_gettext("Tỉnh tổ chức đánh giá lại")}
FIELD_LABELS["choice"] = lazy_gettext("Quyết định của tỉnh")
FIELD_LABELS["reason"] = lazy_gettext("Lý do")
CHOICE_LABELS["criteria_checked"] = IDEA_CRITERIA

# Fields shown first, in this order; the rest follow in the schema's order.
# (Inherited schema fields come first otherwise: `reasons` before `decision`.)
LEAD_FIELDS = ("decision",)
TRAILING_FIELDS = ("reasons",)


@dataclass
class FormField:
    name: str
    kind: str                 # text textarea radio yesno checkbox checkboxes lines number decimal date score_sheet
    label: str
    required: bool = False
    choices: list[tuple[str, str]] = field(default_factory=list)
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    default: object = None
    help: str | None = None


def _validator(schema_field, kind):
    return next((v for v in schema_field.validators if isinstance(v, kind)), None)


def _choices(name: str, values) -> list[tuple[str, str]]:
    labels = CHOICE_LABELS.get(name, {})
    return [(value, labels.get(value, value)) for value in values]


def _describe_field(name: str, schema_field) -> FormField:
    """How one schema field is shown, from its type and validators."""
    spec = FormField(name, "text", FIELD_LABELS.get(name, name), required=schema_field.required,
                     help=FIELD_HELP.get(name))
    if isinstance(schema_field.load_default, bool):
        spec.default = schema_field.load_default
    if isinstance(schema_field, mf.List):
        inner = schema_field.inner
        if isinstance(inner, mf.Nested):
            spec.kind = "score_sheet"
            return spec
        one_of = _validator(inner, validate.OneOf)
        if one_of is not None:
            spec.kind, spec.choices = "checkboxes", _choices(name, one_of.choices)
        elif name in CHOICE_LABELS:  # a free list with a checklist the page offers
            spec.kind, spec.choices = "checkboxes", _choices(name, CHOICE_LABELS[name])
        else:
            spec.kind = "lines"
        length = _validator(inner, validate.Length)
        spec.max_length = length.max if length else None
        return spec
    if isinstance(schema_field, mf.Boolean):
        # A required yes/no must be answered: an unticked checkbox cannot
        # tell "no" from "not answered", so it gets two radio buttons.
        spec.kind = "yesno" if schema_field.required and name not in CHECKBOX_FIELDS else "checkbox"
        return spec
    if isinstance(schema_field, (mf.Integer, mf.Float)):
        spec.kind = "number" if isinstance(schema_field, mf.Integer) else "decimal"
        bounds = _validator(schema_field, validate.Range)
        if bounds is not None:
            spec.minimum, spec.maximum = bounds.min, bounds.max
        return spec
    if isinstance(schema_field, mf.Date):
        spec.kind = "date"
        return spec
    one_of = _validator(schema_field, validate.OneOf)
    if one_of is not None:
        spec.kind, spec.choices = "radio", _choices(name, one_of.choices)
        return spec
    length = _validator(schema_field, validate.Length)
    spec.max_length = length.max if length else None
    spec.kind = "textarea" if (spec.max_length or 0) > 500 else "text"
    return spec


# Fields the score sheet draws itself, with choices from the product's own
# criteria set (the generic field list cannot know them).
SCORE_SHEET_FIELDS = ("minimums_missed",)


# Forms the score sheet component draws (web/templates/tasks/_sheet.html),
# and the schema fields it takes over from the generic field list.
SHEET_FORMS = {"council_sheet": "member", "submit_dossier": "self"}
SHEET_FIELDS = {"council_sheet": ("recused", "conflict_reason", "levels", "eliminations", "comments"),
                "submit_dossier": ("self_assessment", "self_assessment_score")}
LEVEL_PREFIX = "level__"  # a criterion's radio buttons: level__A.1.1


def sheet_mode(form_key: str) -> str | None:
    """"member", "self" or None: the self-assessment only once the dossier's
    schema takes it (engine/forms.py SubmitDossierForm.self_assessment)."""
    mode = SHEET_FORMS.get(form_key)
    if mode == "self" and "self_assessment" not in form_schema(form_key).fields:
        return None
    return mode
# A boolean shown as one checkbox even when the schema requires it.
CHECKBOX_FIELDS = ("confirmed",)


def form_fields(form_key: str) -> list[FormField]:
    """The fields of a form key, in display order."""
    taken = SHEET_FIELDS.get(form_key, ()) if sheet_mode(form_key) else ()
    declared = {n: f for n, f in form_schema(form_key).fields.items()
                if n not in SCORE_SHEET_FIELDS and n not in taken}
    names = [n for n in LEAD_FIELDS if n in declared]
    names += [n for n in declared if n not in LEAD_FIELDS and n not in TRAILING_FIELDS]
    names += [n for n in TRAILING_FIELDS if n in declared]
    return [_describe_field(name, declared[name]) for name in names]


# --- from the browser's strings to the schema's data -------------------------

def _integer_text(raw: str) -> str:
    # People write 200.000.000 or 200 000 000 for an amount in đồng: the
    # separators go; anything else is left for the schema to refuse.
    return re.sub(r"[\s.,]", "", raw)


def _decimal_text(raw: str) -> str:
    # Vietnamese writes the decimal point as a comma: 8,5 -> 8.5.
    return raw.replace(",", ".")


def parse(form_key: str, form: MultiDict, group_code: str | None = None) -> tuple[dict, list[int]]:
    """The data to submit, and for a score sheet the page row each sheet
    came from (empty rows are skipped, so sheet i may be row j).

    Blank inputs are left out rather than sent as "": the schema then
    applies its default, or says the field is required."""
    data: dict = {}
    rows: list[int] = []
    if sheet_mode(form_key) and group_code is not None:
        data.update(parse_sheet(form_key, form, group_code))
    for spec in form_fields(form_key):
        name = spec.name
        raw = form.get(name)
        if spec.kind == "score_sheet":
            data[name], rows = _parse_sheets(form)
            for extra in SCORE_SHEET_FIELDS:
                data[extra] = form.getlist(extra)
        elif spec.kind == "checkboxes":
            data[name] = form.getlist(name)
        elif spec.kind == "checkbox":
            data[name] = raw == "true"
        elif spec.kind == "lines":
            data[name] = [line.strip() for line in (raw or "").splitlines() if line.strip()]
        elif raw is None:
            continue
        elif spec.kind == "yesno":
            data[name] = {"true": True, "false": False}.get(raw, raw)
        elif spec.kind in ("number", "decimal", "date"):
            raw = raw.strip()
            if raw:
                data[name] = _integer_text(raw) if spec.kind == "number" else (
                    _decimal_text(raw) if spec.kind == "decimal" else raw)
        else:
            data[name] = raw.strip()
    return data, rows


def posted_levels(form: MultiDict) -> dict[str, str]:
    """{criterion_id: level_key} of the sheet's chosen radio buttons."""
    return {name[len(LEVEL_PREFIX):]: value for name, value in form.items(multi=False)
            if name.startswith(LEVEL_PREFIX) and value}


def parse_sheet(form_key: str, form: MultiDict, group_code: str) -> dict:
    """The sheet's part of the data: a member's sheet in the contract's
    shape, or the producer's self-assessment and its computed total."""
    levels = posted_levels(form)
    if SHEET_FORMS[form_key] == "self":
        if not levels:
            return {"self_assessment": {}}
        total = score_sheets.sheet_totals(score_sheets.set_code(group_code), levels)["total"]
        return {"self_assessment": levels, "self_assessment_score": total}
    recused = form.get("recused") == "true"
    return {"recused": recused, "conflict_reason": (form.get("conflict_reason") or "").strip(),
            "levels": {} if recused else levels,
            "eliminations": [] if recused else form.getlist("eliminations"),
            "comments": (form.get("comments") or "").strip()}


def sheet_errors(form_key: str, data: dict, group_code: str) -> dict[str, list[str]]:
    """What the page itself refuses in a member's sheet before the engine
    sees it (the engine's schema checks the same and more): a recusal
    without its reason, a criterion without a level, a level not of the set."""
    if sheet_mode(form_key) != "member":
        return {}
    code = score_sheets.set_code(group_code)
    errors: dict[str, list[str]] = {}
    if data.get("recused"):
        if len(data.get("conflict_reason", "")) < 5:
            errors["conflict_reason"] = [_("Hãy ghi lý do (ít nhất 5 ký tự).")]
        return errors
    chosen = data.get("levels") or {}
    for cid in score_sheets.unknown_levels(code, chosen):
        errors[LEVEL_PREFIX + cid] = [_("Mức này không có trong bộ tiêu chí.")]
    for item in score_sheets.scorable_items(code):
        if item["id"] not in chosen:
            errors[LEVEL_PREFIX + item["id"]] = [_("Hãy chọn một mức.")]
    allowed = {e["key"] for e in score_sheets.eliminations(code)}
    if any(key not in allowed for key in data.get("eliminations") or []):
        errors["eliminations"] = [_("Giá trị không hợp lệ.")]
    return errors


def sheet_rows(form: MultiDict) -> list[dict[str, str]]:
    """The score sheet's rows as typed (SCORE_ROWS of them)."""
    return [{key: (form.get(f"sheets-{i}-{key}") or "")
             for key in ("member", "part_a", "part_b", "part_c")} for i in range(SCORE_ROWS)]


def _parse_sheets(form: MultiDict) -> tuple[list[dict], list[int]]:
    sheets, rows = [], []
    for index, row in enumerate(sheet_rows(form)):
        if not any(value.strip() for value in row.values()):
            continue  # an unused row
        sheet = {"member": row["member"].strip()}
        for part in ("part_a", "part_b", "part_c"):
            if row[part].strip():
                sheet[part] = _decimal_text(row[part].strip())
        sheets.append(sheet)
        rows.append(index)
    return sheets, rows


# --- the schema's errors, in Vietnamese, keyed as the page's inputs ----------

_MESSAGES = [
    (r"Missing data for required field\.", lambda m, k: _("Bắt buộc nhập.")),
    (r"Field may not be null\.", lambda m, k: _("Bắt buộc nhập.")),
    (r"Not a valid integer\.", lambda m, k: _("Phải là số nguyên.")),
    (r"Not a valid number\.", lambda m, k: _("Phải là một số.")),
    (r"Not a valid date\.", lambda m, k: _("Ngày không hợp lệ.")),
    (r"Not a valid boolean\.", lambda m, k: _("Hãy chọn Có hoặc Không.")),
    (r"Not a valid (string|list)\.", lambda m, k: _("Giá trị không hợp lệ.")),
    (r"Must be one of: .*", lambda m, k: _("Hãy chọn một giá trị trong danh sách.")),
    (r"Unknown field\.", lambda m, k: _("Trường này không có trong mẫu.")),
    (r"Longer than maximum length (\d+)\.", lambda m, k: _("Tối đa %(n)s ký tự.", n=m[1])),
    (r"Shorter than minimum length (\d+)\.",
     lambda m, k: _("Chọn ít nhất %(n)s mục.", n=m[1]) if k == "list" else _("Cần ít nhất %(n)s ký tự.", n=m[1])),
    (r"Length must be between (\d+) and (\d+)\.",
     lambda m, k: _("Cần từ %(a)s đến %(b)s phiếu.", a=m[1], b=m[2]) if k == "list"
     else _("Tối đa %(n)s ký tự.", n=m[2]) if m[1] == "0"
     else _("Cần từ %(a)s đến %(b)s ký tự.", a=m[1], b=m[2])),
    (r"Must be greater than or equal to (\S+)\.", lambda m, k: _("Không được nhỏ hơn %(n)s.", n=m[1])),
    (r"Must be less than or equal to (\S+)\.", lambda m, k: _("Không được lớn hơn %(n)s.", n=m[1])),
]


def message_vi(message: str, kind: str = "text") -> str:
    """One schema message for the page. The engine's own messages are
    bilingual ("Vietnamese / English"): the Vietnamese half is shown."""
    for pattern, make in _MESSAGES:
        match = re.fullmatch(pattern, message)
        if match:
            return make(match, kind)
    return _(message.split(" / ")[0])


def _flatten(messages) -> list[str]:
    if isinstance(messages, dict):
        return [text for value in messages.values() for text in _flatten(value)]
    if isinstance(messages, (list, tuple)):
        return [text for value in messages for text in _flatten(value)]
    return [str(messages)]


def field_errors(form_key: str, errors: dict, rows: list[int] | None = None) -> dict[str, list[str]]:
    """FormInvalid.errors as {input name: [messages]}. Score-sheet cells are
    named sheets-<row>-<part>; what belongs to no field goes under "_form"."""
    kinds = {spec.name: spec.kind for spec in form_fields(form_key)}
    result: dict[str, list[str]] = {}
    for name, messages in errors.items():
        kind = kinds.get(name)
        if name in ("levels", "self_assessment") and isinstance(messages, dict):
            for cid, texts in messages.items():  # {criterion_id: [messages]} -> the criterion's radios
                result.setdefault(LEVEL_PREFIX + str(cid), []).extend(message_vi(t) for t in _flatten(texts))
            continue
        if name in SHEET_FIELDS.get(form_key, ()):
            result.setdefault(name, []).extend(message_vi(t) for t in _flatten(messages))
            continue
        if kind == "score_sheet" and isinstance(messages, dict):
            for index, cells in messages.items():
                row = rows[int(index)] if rows and int(index) < len(rows) else int(index)
                cells = cells if isinstance(cells, dict) else {"member": cells}
                for cell, texts in cells.items():
                    result.setdefault(f"sheets-{row}-{cell}", []).extend(message_vi(t) for t in _flatten(texts))
            continue
        key = name if kind else "_form"
        style = "list" if kind in ("checkboxes", "lines", "score_sheet") else "text"
        result.setdefault(key, []).extend(message_vi(text, style) for text in _flatten(messages))
    return result


# --- a submitted form, for reading in the history ----------------------------

def describe(form_key: str | None, form: dict) -> list[tuple[str, object]]:
    """(label, value) pairs of a submitted form: choices by their labels,
    yes/no in words, score sheets one line per member. Empty values left out."""
    specs = {spec.name: spec for spec in form_fields(form_key)} if form_key in FORMS else {}
    shown = []
    # In the page's field order (decision before reasons), then anything else.
    names = [name for name in specs if name in form] + [name for name in form if name not in specs]
    for name in names:
        value = form[name]
        if value in ("", None, []):
            continue
        spec = specs.get(name)
        label = spec.label if spec else name
        labels = CHOICE_LABELS.get(name, {})
        if spec and spec.kind == "score_sheet":
            value = [_("%(member)s: A %(a)s, B %(b)s, C %(c)s (tổng %(total)s)", member=s.get("member", ""),
                       a=_number(s.get("part_a")), b=_number(s.get("part_b")), c=_number(s.get("part_c")),
                       total=_number(sum(float(s.get(p) or 0) for p in ("part_a", "part_b", "part_c"))))
                     for s in value]
        elif isinstance(value, dict):  # a sheet's levels: {criterion_id: level_key}
            value = _("%(n)s tiêu chí", n=len(value))
        elif isinstance(value, bool):
            value = _("Có") if value else _("Không")
        elif isinstance(value, int):
            value = f"{value:,}".replace(",", ".")  # Vietnamese thousands separator
        elif isinstance(value, list):
            value = ", ".join(str(labels.get(item, item)) for item in value)
        elif isinstance(value, str) and value in labels:
            value = str(labels[value])  # a lazy label would render as a sequence of characters
        shown.append((str(label), value))
    return shown


def _number(value) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def sheet_total(row: dict[str, str]) -> float | None:
    """A typed row's total, or None while a part is blank or not a number."""
    try:
        return sum(float(_decimal_text(row[p])) for p in ("part_a", "part_b", "part_c"))
    except ValueError:
        return None


# The inspection after recognition (engine.forms.InspectionReportForm, issue 16).
FIELD_LABELS.update({
    "inspected_on": lazy_gettext("Ngày kiểm tra"),
    "criteria_maintained": lazy_gettext("Sản phẩm duy trì các tiêu chí đã được công nhận"),
    "mark_used_correctly": lazy_gettext("Sử dụng đúng nhãn, biểu tượng và thông tin OCOP"),
    "findings": lazy_gettext("Nội dung phát hiện"),
    "propose_revocation": lazy_gettext("Đề nghị thu hồi giấy chứng nhận"),
    "ground": lazy_gettext("Căn cứ đề nghị thu hồi"),
})
FIELD_HELP["findings"] = lazy_gettext("Bắt buộc khi có nội dung không đạt hoặc khi đề nghị thu hồi.")
CHOICE_LABELS["ground"] = {
    "criteria_not_maintained": lazy_gettext("Sản phẩm không còn đáp ứng tiêu chí (theo kết luận kiểm tra)"),
    "mark_misused": lazy_gettext("Sử dụng sai nhãn hiệu, biểu tượng OCOP"),
}
# The certificate lifecycle's forms (issue 16, helper B1: engine/forms.py Reevaluation*/Upgrade*).
FIELD_LABELS.update({
    "materials": lazy_gettext("Nguyên liệu (thay đổi, cập nhật)"),
    "technology": lazy_gettext("Công nghệ, quy trình sản xuất"),
    "packaging_labels": lazy_gettext("Bao bì, nhãn hàng hóa"),
    "quality_declaration": lazy_gettext("Công bố chất lượng"),
    "lab_tests": lazy_gettext("Kiểm nghiệm định kỳ"),
    "markets": lazy_gettext("Thị trường tiêu thụ"),
    "output": lazy_gettext("Sản lượng"),
    "revenue": lazy_gettext("Doanh thu"),
    "legal_papers": lazy_gettext("Giấy tờ pháp lý và ngày hết hạn"),
    "complete": lazy_gettext("Hồ sơ đầy đủ"),
    "assessment_notes": lazy_gettext("Nhận xét của xã (mẫu 03)"),
    "summary": lazy_gettext("Tóm tắt những thay đổi từ lần công nhận trước"),
    "criteria_touched": lazy_gettext("Tiêu chí có thay đổi (mỗi dòng một mã, ví dụ B.4.1)"),
    "changes": lazy_gettext("Thay đổi theo từng tiêu chí"),
})
FIELD_HELP.update({"legal_papers": lazy_gettext("Mỗi dòng một giấy tờ: tên, số và ngày hết hạn.")})
