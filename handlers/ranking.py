"""rank_product: the council result of the diagrams before issue 15, where
one council account typed every member's A/B/C subtotals. Instances started
on those versions keep it; the council sessions of today use
handlers/council_ranking.py. The bands and the level cap are shared
(handlers/council_rules.py).

Stars come from the council's *average* total (Decision 148 and 26/2026,
Art. 3.3); the bands are data in processes/criteria/index.json. A product
that misses the starred minimum of a criterion cannot take a rank that
requires it (the criteria files' "required from N stars"). A council
recognises at most `max_stars` (district 3, province 4, central 5);
1 and 2 stars are never recognised.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from handlers.context import HandlerContext
from handlers.council_rules import recognised_stars, stars_for_average
from handlers.registry import handler
from storage.criteria import sets_by_code, star_cap

LEVELS = ("district", "province", "central")
stars_for_score = stars_for_average  # the name the score preview and the benches use


def sheet_total(sheet: dict) -> float:
    return float(sheet["part_a"]) + float(sheet["part_b"]) + float(sheet["part_c"])


def council_average(sheets: list[dict]) -> float:
    """The unrounded average of the sheets' totals: banding uses it as is
    (69.996 is 3 stars); only what is shown is rounded."""
    if not sheets:
        raise ValueError("a council ranking needs at least one score sheet")
    return sum(sheet_total(sheet) for sheet in sheets) / len(sheets)


class SheetSchema(Schema):
    member = fields.String(load_default="")
    part_a = fields.Float(required=True, validate=validate.Range(min=0))
    part_b = fields.Float(required=True, validate=validate.Range(min=0))
    part_c = fields.Float(required=True, validate=validate.Range(min=0))
    criteria = fields.Dict(load_default=dict)


class RankProductParams(Schema):
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    sheets = fields.List(fields.Nested(SheetSchema, unknown="include"), required=True,
                         validate=validate.Length(min=1))
    max_stars = fields.Integer(required=True, validate=validate.Range(min=3, max=5))
    criteria_set = fields.String(load_default=None, allow_none=True,
                                 validate=validate.OneOf(sorted(sets_by_code())))
    minimums_missed = fields.List(fields.String(), load_default=list)


@handler("rank_product", RankProductParams,
         "Tính điểm trung bình của hội đồng và xếp hạng sao / council average and star rank",
         result={"average": "number", "stars": "1..5, capped by missed starred minimums",
                 "recognised_stars": "0 or 3..max_stars", "star_cap": "1..5"},
         pure=True)
def rank_product(context: HandlerContext, level: str, sheets: list[dict], max_stars: int,
                 criteria_set: str | None, minimums_missed: list[str]) -> dict:
    average = council_average(sheets)
    cap = star_cap(criteria_set, minimums_missed) if (criteria_set and minimums_missed) else 5
    stars = min(stars_for_average(average), cap)
    return {"level": level, "average": round(average, 2), "stars": stars, "star_cap": cap, "members": len(sheets),
            "recognised_stars": recognised_stars(stars, max_stars)}
