"""The forms user tasks open, one marshmallow schema per form key.

A diagram's user task names its form with the `formKey` property; deploy
refuses keys that are not here. Submitted data is loaded (validated) and
dumped back to JSON-friendly values before it enters the workflow, so
process variables are plain strings, numbers, lists and dicts.
"""
from __future__ import annotations

import functools
import re

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from engine.errors import FormInvalid
from storage.criteria import eliminations, level_owner, level_points, mandatory_criteria, scorable_items, section_maxima

DEFAULT_CRITERIA_SET = "S07"
SUPPORT_KINDS = ("training", "consulting", "technology", "loan", "trade_promotion")
EVIDENCE_KINDS = (
    "business_registration", "food_safety_licence", "quality_declaration", "lab_test",
    "barcode_traceability", "trademark", "raw_material_origin", "quality_management",
    "marketing", "product_story", "awards", "product_samples",
)
OUTREACH_CHANNELS = ("meeting", "radio", "loudspeaker", "leaflet", "social_media", "training")


# NUL, the other C0 controls but tab and line breaks, DEL, unpaired
# surrogates (only JSON can carry those), and the bidirectional controls
# (marks U+200E, U+200F, U+061C; embeddings, overrides and isolates
# U+202A-U+202E, U+2066-U+2069): no form's text needs them, a PostgreSQL
# text column refuses NUL, an unpaired surrogate cannot be encoded for any
# database, and a bidi control makes a name read otherwise than it is
# ("Mật ong \u202egnp.exe" shows as "Mật ong exe.png"). The one definition:
# every form, API body, sign-up, name and upload's file name is checked
# against it.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff"
                                "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain_text(value: str) -> None:
    """marshmallow validator: text without CONTROL_CHARACTERS."""
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError("Không được chứa ký tự điều khiển / control characters are not allowed")


def _text(required=True, max_length=5000, min_length=1):
    checks = [validate.Length(min=min_length if required else 0, max=max_length), plain_text]
    if required:
        return fields.String(required=True, validate=checks)
    return fields.String(load_default="", validate=checks)


def _short_text(max_length=100):
    """One entry of a list of names (documents, criteria)."""
    return fields.String(validate=[validate.Length(max=max_length), plain_text])


class FormSchema(Schema):
    class Meta:
        unknown = RAISE  # a field the form does not have is an error, not silently kept


class SheetFormSchema(FormSchema):
    """A form whose fields depend on the product's criteria set (its score
    sheet): built once per set by form_schema()."""

    def __init__(self, criteria_set: str, **kwargs):
        super().__init__(**kwargs)
        self.criteria_set = criteria_set

    def check_levels(self, levels: dict, field: str, complete: bool) -> None:
        """Every key a criterion of the set and every value one of its own
        levels; with `complete`, every criterion chosen."""
        owner = level_owner(self.criteria_set)
        items = [item["id"] for item in scorable_items(self.criteria_set)]
        errors = {}
        for criterion, key in levels.items():
            if criterion not in items:
                errors[criterion] = [f"Không phải tiêu chí của bộ {self.criteria_set} / not a criterion of the set"]
            elif owner.get(key) != criterion:
                errors[criterion] = ["Mức đánh giá không thuộc tiêu chí này / not a level of this criterion"]
        if complete:
            for criterion in items:
                if criterion not in levels:
                    errors[criterion] = ["Chưa chọn mức đánh giá / choose a level"]
        if errors:
            raise ValidationError({field: errors})


class DecisionForm(FormSchema):
    """A review: a decision, with reasons required whenever it sends back."""

    DECISIONS: tuple[str, ...] = ("accept", "return")
    reasons = _text(required=False)

    @validates_schema
    def _reasons_on_return(self, data, **kwargs):
        if data.get("decision") == "return" and len((data.get("reasons") or "").strip()) < 5:
            raise ValidationError("Cần nêu lý do khi trả lại (ít nhất 5 ký tự) / "
                                  "reasons are required on return", "reasons")


class RegisterIdeaForm(FormSchema):
    registration_form = fields.String(required=True, validate=validate.OneOf(("01", "02")))
    product_description = _text(min_length=10)
    raw_materials = _text()
    expected_market = _text()
    production_capacity = _text(required=False, max_length=500)


class ReceiveIdeaForm(FormSchema):
    form_complete = fields.Boolean(required=True)
    notes = _text(required=False)


class ReviewIdeaForm(DecisionForm):
    decision = fields.String(required=True, validate=validate.OneOf(DecisionForm.DECISIONS))
    criteria_checked = fields.List(_short_text(), load_default=list)


class SubmitPlanForm(FormSchema):
    plan_summary = _text(min_length=10)
    organisation_description = _text(required=False)
    investment_vnd = fields.Integer(load_default=0, validate=validate.Range(min=0))
    documents = fields.List(_short_text(), load_default=list)


class ReviewPlanForm(ReviewIdeaForm):
    support_to_arrange = fields.List(fields.String(validate=validate.OneOf(SUPPORT_KINDS)),
                                     load_default=list)


class SupportRecordForm(FormSchema):
    visited_on = fields.Date(required=True)
    activities = _text()
    support_types = fields.List(fields.String(validate=validate.OneOf(SUPPORT_KINDS)), load_default=list)
    consultants = _text(required=False, max_length=500)


def _levels_field():
    """criterion id -> level key, as a score sheet holds them."""
    return fields.Dict(keys=fields.String(validate=validate.Length(max=30)),
                       values=fields.String(validate=validate.Length(max=40)), load_default=dict)


class SubmitDossierForm(SheetFormSchema):
    evidence = fields.List(fields.String(validate=validate.OneOf(EVIDENCE_KINDS)), required=True,
                           validate=validate.Length(min=1))
    # The producer's self-assessment (Decision 26/2026, form 02): the level
    # they claim on each criterion of the sheet the council will use. The
    # score is computed from it when it is given.
    self_assessment = _levels_field()
    self_assessment_score = fields.Float(load_default=None, allow_none=True,
                                         validate=validate.Range(min=0, max=100))
    documents = fields.List(_short_text(), load_default=list)
    notes = _text(required=False)

    @validates_schema
    def _self_assessment_levels(self, data, **kwargs):
        self.check_levels(data.get("self_assessment") or {}, "self_assessment", complete=False)

    @post_load
    def _self_assessment_total(self, data, **kwargs):
        if data.get("self_assessment"):
            points = level_points(self.criteria_set)
            data["self_assessment_score"] = sum(points[key] for key in data["self_assessment"].values())
        return data


class ForwardDecisionForm(DecisionForm):
    DECISIONS = ("forward", "return")
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))


class CheckDossierForm(ForwardDecisionForm):
    dossier_complete = fields.Boolean(load_default=True)


class CommuneAssessmentForm(ForwardDecisionForm):
    local_origin = fields.Boolean(required=True)
    local_labour = fields.Boolean(required=True)
    identity_notes = _text(required=False)


class AdvisoryReviewForm(ForwardDecisionForm):
    site_visit = fields.Boolean(load_default=False)
    lab_tests_ordered = fields.Boolean(load_default=False)
    # The team's review of the producer's self-assessment (form 02), which the
    # council members then see beside their own sheet.
    self_assessment_notes = _text(required=False, max_length=2000)


class ScoreSheet(FormSchema):
    member = _text(max_length=200)
    part_a = fields.Float(required=True, validate=validate.Range(min=0))
    part_b = fields.Float(required=True, validate=validate.Range(min=0))
    part_c = fields.Float(required=True, validate=validate.Range(min=0))


class ScoreProductForm(FormSchema):
    """Every council member's sheet (Part A, B, C totals). Maxima come from
    the product's criteria set (Decision 26/2026: A 40, B 25, C 35)."""

    sheets = fields.List(fields.Nested(ScoreSheet), required=True,
                         validate=validate.Length(min=1, max=30))
    # Starred criteria whose minimum the product does not reach: it cannot
    # take a rank that requires them (the cap is applied by rank_product).
    minimums_missed = fields.List(fields.String(validate=validate.Length(max=20)), load_default=list)

    def __init__(self, criteria_set: str, **kwargs):
        super().__init__(**kwargs)
        self.maxima = section_maxima(criteria_set)
        self.starred = {c["id"] for c in mandatory_criteria(criteria_set)}

    @validates_schema
    def _known_criteria(self, data, **kwargs):
        unknown = sorted(set(data.get("minimums_missed", [])) - self.starred)
        if unknown:
            raise ValidationError(f"Không phải tiêu chí có yêu cầu tối thiểu / not a starred criterion: "
                                  f"{', '.join(unknown)}", "minimums_missed")

    @validates_schema
    def _within_maxima(self, data, **kwargs):
        errors = {}
        for index, sheet in enumerate(data.get("sheets", [])):
            for part in ("A", "B", "C"):
                value, maximum = sheet[f"part_{part.lower()}"], self.maxima[part]
                if value > maximum:
                    errors.setdefault(index, {})[f"part_{part.lower()}"] = [
                        f"Phần {part} tối đa {maximum:g} điểm / Part {part} is at most {maximum:g}"]
        members = [sheet["member"].strip().casefold() for sheet in data.get("sheets", [])]
        if len(members) != len(set(members)):
            raise ValidationError("Mỗi thành viên chỉ nộp một phiếu / one sheet per member", "sheets")
        if errors:
            raise ValidationError({"sheets": errors})


class CouncilMember(FormSchema):
    user_id = fields.Integer(required=True, validate=validate.Range(min=1))
    name = _text(max_length=200)
    department = _text(required=False, max_length=200)
    role = fields.String(required=True, validate=validate.OneOf(("chair", "vice_chair", "member", "secretary")))


class CouncilAttendanceForm(FormSchema):
    """A product put on a council session's agenda, with the session's
    roster and attendance. Built by programme/councils.open_session from the
    council as stored, never typed (SESSION_FORMS); the quorum is checked
    there and again by the council_panel handler."""

    # None for a session nobody recorded on the session page (dry run, simulation)
    session_id = fields.Integer(required=True, allow_none=True, validate=validate.Range(min=1))
    council_id = fields.Integer(required=True, allow_none=True, validate=validate.Range(min=1))
    council_name = _text(max_length=300)
    held_on = fields.Date(required=True)
    place = _text(required=False, max_length=300)
    members = fields.List(fields.Nested(CouncilMember), required=True, validate=validate.Length(min=1, max=60))
    present = fields.List(fields.Integer(), required=True)
    quorum_fraction = fields.Float(required=True, validate=validate.Range(min=0, max=1))
    chair_required = fields.Boolean(required=True)
    spread_limit = fields.Float(required=True, validate=validate.Range(min=0, max=100))
    chair_id = fields.Integer(required=True)
    secretary_id = fields.Integer(required=True)

    @validates_schema
    def _roster(self, data, **kwargs):
        roles = {member["user_id"]: member["role"] for member in data.get("members", [])}
        if len(roles) != len(data.get("members", [])):
            raise ValidationError("Một thành viên xuất hiện hai lần / a member is listed twice", "members")
        if set(data.get("present", [])) - set(roles):
            raise ValidationError("Người có mặt không thuộc hội đồng / present but not a member", "present")
        if roles.get(data.get("chair_id")) != "chair":
            raise ValidationError("Chủ tịch hội đồng không có trong danh sách / the chair is not a member", "chair_id")
        if data.get("secretary_id") not in roles:  # the chair keeps the minutes of a council without a secretary
            raise ValidationError("Thư ký không có trong danh sách / the secretary is not a member", "secretary_id")


class CouncilSheetForm(SheetFormSchema):
    """One member's sheet for one product: a level per criterion of the
    product's set (points come from the data), the eliminating findings the
    member ticks, or a recusal with its reason (conflict of interest)."""

    recused = fields.Boolean(load_default=False)
    conflict_reason = _text(required=False, max_length=1000)
    levels = _levels_field()
    eliminations = fields.List(fields.String(validate=validate.Length(max=40)), load_default=list)
    comments = _text(required=False)

    @validates_schema
    def _complete_or_recused(self, data, **kwargs):
        if data.get("recused"):
            if len((data.get("conflict_reason") or "").strip()) < 5:
                raise ValidationError("Cần nêu lý do không chấm (ít nhất 5 ký tự) / "
                                      "give the reason for the recusal", "conflict_reason")
            return
        self.check_levels(data.get("levels") or {}, "levels", complete=True)
        known = {line["key"] for line in eliminations(self.criteria_set)}
        unknown = sorted(set(data.get("eliminations") or []) - known)
        if unknown:
            raise ValidationError(f"Không phải điều kiện loại hồ sơ của bộ tiêu chí / not an elimination finding "
                                  f"of the set: {', '.join(unknown)}", "eliminations")

    @post_load
    def _recusal_scores_nothing(self, data, **kwargs):
        if data.get("recused"):
            data["levels"], data["eliminations"] = {}, []
        return data


class CouncilSpreadForm(FormSchema):
    """The secretary's record of the council's discussion when members'
    totals differ by more than the limit; the council then scores again."""

    notes = _text(min_length=5)


class CouncilSignOffForm(FormSchema):
    """The chair confirms the minutes (biên bản) of the product's session."""

    confirmed = fields.Boolean(required=True, validate=validate.Equal(
        True, error="Cần xác nhận biên bản / confirm the minutes"))
    notes = _text(required=False)


class PlanOutreachForm(FormSchema):
    window_opens = fields.Date(required=True)
    window_closes = fields.Date(required=True)
    channels = fields.List(fields.String(validate=validate.OneOf(OUTREACH_CHANNELS)), load_default=list)
    target_producers = fields.Integer(load_default=0, validate=validate.Range(min=0))

    @validates_schema
    def _window_order(self, data, **kwargs):
        if data["window_closes"] < data["window_opens"]:
            raise ValidationError("Ngày đóng phải sau ngày mở / closes before it opens", "window_closes")


class OutreachReportForm(FormSchema):
    meetings_held = fields.Integer(required=True, validate=validate.Range(min=0))
    producers_reached = fields.Integer(required=True, validate=validate.Range(min=0))
    notes = _text(required=False)


class ConfirmDoneForm(FormSchema):
    """A task done outside the system (a BPMN manualTask, or a plain task,
    without a formKey): there is nothing to fill in, the person confirms
    that it is done."""


CONFIRM_DONE = "confirm_done"
# Forms a person never fills on the task page: the council session page
# (programme/councils.open_session) completes them from the stored council.
SESSION_FORMS = frozenset({"council_attendance"})

FORMS: dict[str, type[FormSchema]] = {
    "register_idea": RegisterIdeaForm,
    "receive_idea": ReceiveIdeaForm,
    "review_idea": ReviewIdeaForm,
    "submit_plan": SubmitPlanForm,
    "review_plan": ReviewPlanForm,
    "support_record": SupportRecordForm,
    "submit_dossier": SubmitDossierForm,
    "check_dossier": CheckDossierForm,
    "commune_assessment": CommuneAssessmentForm,
    "advisory_review": AdvisoryReviewForm,
    "score_product": ScoreProductForm,
    "council_attendance": CouncilAttendanceForm,
    "council_sheet": CouncilSheetForm,
    "council_spread": CouncilSpreadForm,
    "council_sign_off": CouncilSignOffForm,
    "plan_outreach": PlanOutreachForm,
    "outreach_report": OutreachReportForm,
    CONFIRM_DONE: ConfirmDoneForm,
}


@functools.lru_cache(maxsize=256)
def form_schema(form_key: str, criteria_set: str | None = None) -> FormSchema:
    """The form's schema instance (shared: marshmallow keeps no per-call
    state in it, and building one costs more than validating a form)."""
    schema_class = FORMS[form_key]
    if issubclass(schema_class, (ScoreProductForm, SheetFormSchema)):
        return schema_class(criteria_set or DEFAULT_CRITERIA_SET)
    return schema_class()


def validate_form(form_key: str, data: dict, criteria_set: str | None = None) -> dict:
    """The submitted data, validated and as JSON-friendly values; raises
    FormInvalid with per-field messages."""
    if form_key not in FORMS:
        raise FormInvalid(form_key, {"_schema": [f"unknown form '{form_key}'"]})
    if not isinstance(data, dict):
        raise FormInvalid(form_key, {"_schema": ["form data must be an object"]})
    schema = form_schema(form_key, criteria_set)
    try:
        return schema.dump(schema.load(data))
    except ValidationError as err:
        raise FormInvalid(form_key, err.messages) from None


# --- After the council: recognition (issue 16, helper A) ---------------------------------

class DecisionRefForm(FormSchema):
    id = fields.Integer(required=True, validate=validate.Range(min=1))
    number = _text(max_length=64)
    signed_on = fields.Date(required=True)
    signer = _text(max_length=200)
    authority = fields.String(required=True, validate=validate.OneOf(("district", "province", "ministry")))


class RecognitionDecisionForm(FormSchema):
    """A product listed in a numbered recognition decision, with what it
    says of it. Written by the decision use case (programme/recognition.py
    issue_decision) from the decision it records, never typed (SESSION_FORMS)."""

    decision = fields.Nested(DecisionRefForm, required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(("recognised", "proposed_five", "not_recognised")))
    stars = fields.Integer(required=True, validate=validate.Range(min=0, max=5))


class CentralFallbackForm(FormSchema):
    """Below 90 at the ministry, the province chair decides (26/2026 Art.
    5): recognise 3 or 4 stars on the ministry's result, or have the
    province evaluate the product again (once; then only recognition)."""

    choice = fields.String(required=True, validate=validate.OneOf(("recognise", "re_evaluate")))
    reason = _text(max_length=2000)


FORMS.update({"recognition_decision": RecognitionDecisionForm, "central_fallback": CentralFallbackForm})
# Recorded by the decision page only (programme/recognition.py), as attendance by the council session page.
SESSION_FORMS = SESSION_FORMS | {"recognition_decision"}


# --- after recognition: revocation (Art. 8) and inspection (Art. 9), issue 16 -------------

# What an inspection may propose a revocation on (Art. 8.1 b and d).
INSPECTION_GROUNDS = ("criteria_not_maintained", "mark_misused")


class RevocationDecisionRecord(FormSchema):
    id = fields.Integer(required=True, validate=validate.Range(min=1))
    number = _text(max_length=64)
    signed_on = fields.Date(required=True)
    signer = _text(max_length=200)
    authority = fields.String(required=True, validate=validate.OneOf(("province", "ministry")))


class RevocationDecisionForm(FormSchema):
    """The People's Committee's (3-4 stars) or the ministry's (5 stars)
    decision on a revocation: recorded only by programme/revocations.decide
    (SESSION_FORMS), which writes the numbered Decision first; `decision`
    is None when the certificate is kept."""

    revoke = fields.Boolean(required=True)
    decision = fields.Nested(RevocationDecisionRecord, required=True, allow_none=True)
    reason = _text(required=False)

    @validates_schema
    def _decision_when_revoked(self, data, **kwargs):
        if data.get("revoke") and not data.get("decision"):
            raise ValidationError("Cần số quyết định thu hồi / a revocation needs its decision", "decision")


class InspectionReportForm(FormSchema):
    """The province office's inspection after recognition: criteria kept,
    the OCOP mark and information used correctly, findings (required when
    either is not), and whether it proposes a revocation and on what ground."""

    inspected_on = fields.Date(required=True)
    criteria_maintained = fields.Boolean(required=True)
    mark_used_correctly = fields.Boolean(required=True)
    findings = _text(required=False)
    propose_revocation = fields.Boolean(required=True)
    ground = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(INSPECTION_GROUNDS))

    @validates_schema
    def _findings_and_ground(self, data, **kwargs):
        failed = not data.get("criteria_maintained") or not data.get("mark_used_correctly")
        if (failed or data.get("propose_revocation")) and len((data.get("findings") or "").strip()) < 5:
            raise ValidationError("Cần ghi nội dung phát hiện (ít nhất 5 ký tự) / "
                                  "describe the findings", "findings")
        if data.get("propose_revocation") and not data.get("ground"):
            raise ValidationError("Cần chọn căn cứ đề nghị thu hồi / choose the ground", "ground")
        if not data.get("propose_revocation") and data.get("ground"):
            raise ValidationError("Chỉ chọn căn cứ khi đề nghị thu hồi / a ground only with a proposal", "ground")


FORMS["revocation_decision"] = RevocationDecisionForm
FORMS["inspection_report"] = InspectionReportForm
SESSION_FORMS = SESSION_FORMS | {"revocation_decision"}


# --- the certificate lifecycle (issue 16, B1): re-evaluation and upgrade ----------------------------

class ReevaluationDossierForm(FormSchema):
    """The producer's re-evaluation dossier (đánh giá, phân hạng lại), filed
    180 to 120 days before the certificate expires: what was updated since
    the recognition, each a short text; documents go through the evidence
    mechanism (names here)."""

    UPDATES = ("materials", "technology", "packaging_labels", "quality_declaration", "lab_tests", "markets",
               "output", "revenue")
    materials = _text(required=False, max_length=1000)
    technology = _text(required=False, max_length=1000)
    packaging_labels = _text(required=False, max_length=1000)
    quality_declaration = _text(required=False, max_length=1000)
    lab_tests = _text(required=False, max_length=1000)
    markets = _text(required=False, max_length=1000)
    output = _text(required=False, max_length=1000)
    revenue = _text(required=False, max_length=1000)
    # One line a paper: its name and until when it is valid ("Giấy ATTP số 12, đến 01/2028").
    legal_papers = fields.List(_short_text(200), load_default=list, validate=validate.Length(max=30))
    documents = fields.List(_short_text(), load_default=list, validate=validate.Length(max=50))
    notes = _text(required=False)

    @validates_schema
    def _something_updated(self, data, **kwargs):
        if not any((data.get(name) or "").strip() for name in self.UPDATES) and not data.get("legal_papers"):
            raise ValidationError("Cần nêu ít nhất một nội dung đã cập nhật / say what was updated", "_schema")


class ReevaluationCheckForm(FormSchema):
    """The commune officer's check of the dossier (form 03): complete or
    not, the commune's assessment items, the reasons when it goes back."""

    complete = fields.Boolean(required=True)
    local_origin = fields.Boolean(load_default=True)
    local_labour = fields.Boolean(load_default=True)
    assessment_notes = _text(required=False)
    reasons = _text(required=False)

    @validates_schema
    def _reasons_when_incomplete(self, data, **kwargs):
        if data.get("complete") is False and len((data.get("reasons") or "").strip()) < 5:
            raise ValidationError("Cần nêu lý do khi hồ sơ chưa đầy đủ (ít nhất 5 ký tự) / "
                                  "reasons are required when the dossier is incomplete", "reasons")


class UpgradeDossierForm(SheetFormSchema):
    """The producer's upgrade dossier (nâng hạng): what changed since the
    last recognition, the criteria of the product's sheet it touches (one
    id a line, e.g. B.4.1), and its evidence. It starts at the dossier: no
    idea, no plan."""

    summary = _text(min_length=10, max_length=3000)
    criteria_touched = fields.List(fields.String(validate=validate.Length(min=1, max=30)), required=True,
                                   validate=validate.Length(min=1, max=40))
    changes = _text(min_length=10, max_length=5000)
    evidence = fields.List(fields.String(validate=validate.OneOf(EVIDENCE_KINDS)), load_default=list)
    documents = fields.List(_short_text(), load_default=list, validate=validate.Length(max=50))

    @validates_schema
    def _criteria_of_the_set(self, data, **kwargs):
        items = {item["id"] for item in scorable_items(self.criteria_set)}
        unknown = sorted(set(data.get("criteria_touched") or []) - items)
        if unknown:
            raise ValidationError(f"Không phải tiêu chí của bộ {self.criteria_set} / not a criterion of the set: "
                                  f"{', '.join(unknown)}", "criteria_touched")


class UpgradeCheckForm(ReevaluationCheckForm):
    """The commune officer's check of an upgrade dossier (as a re-evaluation's)."""


FORMS.update({
    "reevaluation_dossier": ReevaluationDossierForm,
    "reevaluation_check": ReevaluationCheckForm,
    "upgrade_dossier": UpgradeDossierForm,
    "upgrade_check": UpgradeCheckForm,
})
