"""The council's rules as pure functions (handlers/council_rules.py) and the
council forms (engine/forms.py): bands on the unrounded average, per-star
minimums, disqualifiers, recusals, quorum and spread."""
import pytest

from engine.errors import FormInvalid
from engine.forms import validate_form
from engine.samples import levels_for_total
from handlers.council_rules import council_result, quorum, sheet_sections, stars_for_average
from handlers.ranking import council_average
from storage.criteria import eliminations, scorable_items

PANEL = {str(uid): {"user_id": uid, "name": f"TV {uid}", "department": "", "role": role}
         for uid, role in ((1, "chair"), (2, "vice_chair"), (3, "member"), (4, "member"), (5, "secretary"))}


def level_with_points(code, criterion, points):
    item = next(i for i in scorable_items(code) if i["id"] == criterion)
    return next(lv["key"] for lv in item["levels"] if lv["points"] == points)


def sheet_at(code, total, **changes):
    levels = levels_for_total(code, total)
    levels.update(changes)
    return {"levels": levels}


def test_the_band_is_read_from_the_unrounded_average():
    assert stars_for_average(69.996) == 3
    assert stars_for_average(70.0) == 4 and stars_for_average(89.999) == 4 and stars_for_average(90) == 5
    assert stars_for_average(49.99) == 2 and stars_for_average(29.9) == 1
    # The old typed-subtotal sheets too: 69.996 no longer rounds up to 4 stars.
    sheet = {"part_a": 27.998, "part_b": 17.5, "part_c": 24.498}
    assert stars_for_average(council_average([sheet])) == 3


def test_b41_at_two_points_gives_three_stars_to_a_product_averaging_80():
    """The issue's example: B.4.1 (main distribution area) needs 2 points for
    3 stars, 3 for 4; a product averaging 80 with 2 points there is 3 stars."""
    two = level_with_points("S07", "B.4.1", 2)
    sheets = {uid: sheet_at("S07", 80, **{"B.4.1": two}) for uid in PANEL}
    result = council_result("S07", "province", 4, PANEL, sheets)
    assert 70 <= result["average"] < 90 and result["band_stars"] == 4
    assert result["stars"] == 3 and result["recognised_stars"] == 3 and result["star_cap"] == 3
    assert result["criterion_averages"]["B.4.1"] == 2
    assert [(m["criterion_id"], m["stars"], m["needed"]) for m in result["minimums_missed"]] == [("B.4.1", 4, 3)]
    reason = next(r for r in result["reasons"] if r["code"] == "minimum")
    assert "B.4.1" in reason["vi"] and "4 sao cần ít nhất 3 điểm" in reason["vi"]
    # With three points there the band stands.
    three = level_with_points("S07", "B.4.1", 3)
    sheets = {uid: sheet_at("S07", 80, **{"B.4.1": three}) for uid in PANEL}
    assert council_result("S07", "province", 4, PANEL, sheets)["stars"] == 4


def test_a_minimum_is_judged_on_the_criterion_average_across_members():
    two, three = level_with_points("S07", "B.4.1", 2), level_with_points("S07", "B.4.1", 3)
    sheets = {uid: sheet_at("S07", 80, **{"B.4.1": three if uid in ("1", "2", "3") else two}) for uid in PANEL}
    result = council_result("S07", "province", 4, PANEL, sheets)
    assert result["criterion_averages"]["B.4.1"] == pytest.approx(2.6) and result["stars"] == 3


def test_a_disqualifier_upheld_by_a_majority_eliminates_the_dossier():
    dossier_line = eliminations("S07")[0]
    assert dossier_line["key"] == "set#0" and dossier_line["text_vi"].startswith("Hồ sơ bị loại khi")
    ticked = {uid: {**sheet_at("S07", 85), "eliminations": ["set#0"] if uid in ("1", "2", "3") else []}
              for uid in PANEL}
    result = council_result("S07", "province", 4, PANEL, ticked)
    assert result["disqualified"] and result["stars"] == 0 and result["recognised_stars"] == 0
    assert result["eliminations"] == [{"key": "set#0", "text_vi": dossier_line["text_vi"], "votes": 3, "upheld": True}]
    assert any(r["code"] == "elimination" and "3/5" in r["vi"] for r in result["reasons"])
    # Two of five: shown, not upheld.
    ticked = {uid: {**sheet_at("S07", 85), "eliminations": ["set#0"] if uid in ("1", "2") else []} for uid in PANEL}
    result = council_result("S07", "province", 4, PANEL, ticked)
    assert not result["disqualified"] and result["stars"] == 4
    assert any(r["code"] == "elimination_not_upheld" for r in result["reasons"])


def test_a_recused_member_is_left_out_of_the_average():
    sheets = {uid: sheet_at("S07", 60) for uid in PANEL}
    sheets["3"] = {"recused": True, "conflict_reason": "Là thành viên hợp tác xã", "levels": {}}
    sheets["4"] = sheet_at("S07", 100)  # counted: 60, 60, 100, 60
    result = council_result("S07", "province", 4, PANEL, sheets)
    assert result["members"] == 4 and result["recused"] == [3] and result["average"] == 70.0
    assert "3" not in result["totals"] and any(r["code"] == "recused" for r in result["reasons"])
    everyone = {uid: {"recused": True, "conflict_reason": "Người nhà"} for uid in PANEL}
    with pytest.raises(ValueError, match="xin không chấm"):
        council_result("S07", "province", 4, PANEL, everyone)


def test_totals_further_apart_than_the_limit_are_flagged():
    sheets = {uid: sheet_at("S07", 70) for uid in PANEL}
    sheets["5"] = sheet_at("S07", 82)
    result = council_result("S07", "province", 4, PANEL, sheets, spread_limit=10)
    assert result["spread"] == 12 and result["spread_exceeded"]
    assert not council_result("S07", "province", 4, PANEL, sheets, spread_limit=12)["spread_exceeded"]


def test_a_sheet_from_someone_not_present_or_with_a_foreign_level_is_refused():
    with pytest.raises(ValueError, match="not present"):
        council_result("S07", "province", 4, PANEL, {"99": sheet_at("S07", 70)})
    bad = sheet_at("S07", 70, **{"A.1.1": level_with_points("S07", "B.4.1", 2)})
    with pytest.raises(ValueError, match="not an option"):
        council_result("S07", "province", 4, PANEL, {"1": bad})


def test_the_level_cap_and_the_two_star_floor():
    five = {uid: sheet_at("S07", 95) for uid in PANEL}
    assert council_result("S07", "district", 3, PANEL, five)["recognised_stars"] == 3
    forty = {uid: sheet_at("S07", 40) for uid in PANEL}
    result = council_result("S07", "province", 4, PANEL, forty)
    assert result["stars"] == 2 and result["recognised_stars"] == 0
    assert any(r["code"] == "not_recognised" for r in result["reasons"])


@pytest.mark.parametrize("present, met, required", [
    ([1, 2, 3], False, 4), ([2, 3, 4, 5], False, 4), ([1, 2, 3, 4], True, 4), ([1, 2, 3, 4, 99], True, 4)])
def test_quorum_is_three_quarters_with_the_chair(present, met, required):
    check = quorum(list(PANEL.values()), present, 0.75, True)
    assert (check.met, check.required, check.roster) == (met, required, 5)
    assert quorum(list(PANEL.values()), [2, 3, 4, 5], 0.75, False).met


def test_every_set_sums_to_its_maxima_and_every_points_come_from_the_data():
    for code in ("S01", "S07", "S14", "S24", "S26"):
        full = {item["id"]: max(item["levels"], key=lambda lv: lv["points"])["key"] for item in scorable_items(code)}
        assert sheet_sections(code, full) == {"A": 40, "B": 25, "C": 35}


def test_the_sheet_form_wants_every_criterion_or_a_recusal_with_its_reason():
    levels = levels_for_total("S07", 75)
    assert validate_form("council_sheet", {"levels": levels}, "S07")["levels"] == levels
    missing = dict(levels)
    missing.pop("B.4.1")
    with pytest.raises(FormInvalid) as refused:
        validate_form("council_sheet", {"levels": missing}, "S07")
    assert "B.4.1" in refused.value.errors["levels"]
    with pytest.raises(FormInvalid):  # a level of another criterion
        validate_form("council_sheet", {"levels": {**levels, "A.1.1": levels["B.4.1"]}}, "S07")
    with pytest.raises(FormInvalid):  # a points value instead of a level
        validate_form("council_sheet", {"levels": {**levels, "A.1.1": "5"}}, "S07")
    with pytest.raises(FormInvalid) as refused:
        validate_form("council_sheet", {"recused": True, "conflict_reason": ""}, "S07")
    assert "conflict_reason" in refused.value.errors
    recused = validate_form("council_sheet", {"recused": True, "conflict_reason": "Người nhà chủ thể",
                                              "levels": levels}, "S07")
    assert recused["levels"] == {} and recused["recused"]
    with pytest.raises(FormInvalid):
        validate_form("council_sheet", {"levels": levels, "eliminations": ["set#9"]}, "S07")


def test_the_self_assessment_is_scored_from_the_data():
    levels = levels_for_total("S07", 72)
    dossier = validate_form("submit_dossier", {"evidence": ["lab_test"], "self_assessment": levels,
                                               "self_assessment_score": 99}, "S07")
    assert dossier["self_assessment_score"] == 72
    with pytest.raises(FormInvalid):
        validate_form("submit_dossier", {"evidence": ["lab_test"], "self_assessment": {"Z.9": "x"}}, "S07")
