"""The council session's two pure handlers: `council_panel` (who scores,
once the quorum is checked) and `rank_council` (the result of the members'
sheets). Both compute from their parameters alone, so `ocop audit verify`
runs them again on replay and compares; the rules themselves are in
handlers/council_rules.py."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from handlers.context import HandlerContext
from handlers.council_rules import COUNCIL_ROLES, DEFAULT_SPREAD_LIMIT, council_result, quorum
from handlers.ranking import LEVELS
from handlers.registry import handler
from storage.criteria import sets_by_code


class MemberSchema(Schema):
    user_id = fields.Integer(required=True)
    name = fields.String(load_default="")
    department = fields.String(load_default="")
    role = fields.String(required=True, validate=validate.OneOf(COUNCIL_ROLES))


class SessionSchema(Schema):
    """The attendance a session recorded (programme/councils.open_session)."""
    members = fields.List(fields.Nested(MemberSchema, unknown="exclude"), required=True,
                          validate=validate.Length(min=1))
    present = fields.List(fields.Integer(), required=True)
    quorum_fraction = fields.Float(load_default=0.75, validate=validate.Range(min=0, max=1))
    chair_required = fields.Boolean(load_default=True)


class CouncilPanelParams(Schema):
    session = fields.Nested(SessionSchema, unknown="exclude", required=True)


@handler("council_panel", CouncilPanelParams,
         "Lập danh sách thành viên chấm điểm (kiểm tra số lượng dự họp) / the members who score, quorum checked",
         result={"<user id>": "member present: user_id, name, department, role"}, pure=True)
def council_panel(context: HandlerContext, session: dict) -> dict:
    # The session page refuses a session without quorum before anything is
    # saved; this check is for a completion that did not come through it.
    check = quorum(session["members"], session["present"], session["quorum_fraction"], session["chair_required"])
    if not check.met:
        raise ValueError(f"{check.message_vi()} / {check.message_en()}")
    present = set(session["present"])
    return {str(member["user_id"]): member for member in session["members"] if member["user_id"] in present}


class SheetSchema(Schema):
    recused = fields.Boolean(load_default=False)
    conflict_reason = fields.String(load_default="")
    levels = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    eliminations = fields.List(fields.String(), load_default=list)
    comments = fields.String(load_default="")


class RankCouncilParams(Schema):
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    max_stars = fields.Integer(required=True, validate=validate.Range(min=3, max=5))
    criteria_set = fields.String(required=True, validate=validate.OneOf(sorted(sets_by_code())))
    panel = fields.Dict(keys=fields.String(), values=fields.Nested(MemberSchema, unknown="exclude"),
                        required=True)
    sheets = fields.Dict(keys=fields.String(), values=fields.Nested(SheetSchema, unknown="exclude"),
                         required=True, validate=validate.Length(min=1))
    spread_limit = fields.Float(load_default=DEFAULT_SPREAD_LIMIT, validate=validate.Range(min=0, max=100))


@handler("rank_council", RankCouncilParams,
         "Tổng hợp phiếu chấm của các thành viên, xếp hạng sao / council result from the members' sheets",
         result={"average": "unrounded average of the members' totals", "stars": "rank after minimums",
                 "recognised_stars": "0 or 3..max_stars", "reasons": "every reason, in words",
                 "spread_exceeded": "members' totals differ by more than spread_limit"},
         pure=True)
def rank_council(context: HandlerContext, level: str, max_stars: int, criteria_set: str, panel: dict,
                 sheets: dict, spread_limit: float) -> dict:
    return council_result(criteria_set, level, max_stars, panel, sheets, spread_limit)
