"""The council's rules, as pure functions: quorum, star bands, and the
result of a council's member sheets for one product.

Decision 26/2026 Art. 3.3: the rank comes from the council's *average*
total, compared unrounded with the bands of processes/criteria/index.json
(69.996 is 3 stars). A rank is reached only if every criterion's average
also meets the set's starred minimum for that rank (`min_points_for_stars`,
e.g. B.4.1: 2 points for 3 stars, 3 for 4, 5 for 5). A finding that
eliminates the dossier ("Hồ sơ bị loại khi ...") is upheld when more than
half of the members who scored tick it. Quorum and the score-spread limit
are provincial rules (data on the council); the defaults are the common
ones: 3/4 of the members with the chair present, 10 points.

The handlers in handlers/council_ranking.py call these; so does the council
session use case before it opens a session, so both apply the same rule.
Nothing here reads the database or the clock: `ocop audit verify` re-runs
the result on replay and must get the same answer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from storage.criteria import eliminations, level_owner, level_points, scorable_items, star_bands

RECOGNISED_FROM = 3
DEFAULT_QUORUM_FRACTION = 0.75
DEFAULT_SPREAD_LIMIT = 10.0
COUNCIL_ROLES = ("chair", "vice_chair", "member", "secretary")
SECTIONS = ("A", "B", "C")


@dataclass(frozen=True)
class Quorum:
    met: bool
    present: int
    required: int
    roster: int
    chair_present: bool
    chair_required: bool

    def message_vi(self) -> str:
        figures = f"Có mặt {self.present}/{self.roster} thành viên (cần ít nhất {self.required})"
        if self.met:
            return f"Đủ điều kiện họp. {figures}."
        chair = "; chủ tịch hội đồng vắng mặt" if self.chair_required and not self.chair_present else ""
        return f"Không đủ điều kiện họp. {figures}{chair}."

    def message_en(self) -> str:
        return (f"quorum {'met' if self.met else 'not met'}: {self.present} of {self.roster} present, "
                f"{self.required} required, chair {'present' if self.chair_present else 'absent'}")


def quorum(members: list[dict], present: list[int], quorum_fraction: float = DEFAULT_QUORUM_FRACTION,
           chair_required: bool = True) -> Quorum:
    """Whether the members present make a quorum: at least
    ceil(fraction x roster) of the roster present, and the chair among them
    when the rules require it. Present ids not on the roster do not count."""
    roster = {int(member["user_id"]): member for member in members}
    here = {int(uid) for uid in present} & set(roster)
    required = max(1, math.ceil(round(float(quorum_fraction) * len(roster), 9)))
    chair_present = any(roster[uid].get("role") == "chair" for uid in here)
    met = len(here) >= required and (chair_present or not chair_required)
    return Quorum(met, len(here), required, len(roster), chair_present, bool(chair_required))


def stars_for_average(average: float) -> int:
    """The band the unrounded average falls in (5 at 90 and above ... 1)."""
    for band in star_bands():
        if average >= band["min_inclusive"]:
            return band["stars"]
    return 1


def recognised_stars(stars: int, max_stars: int) -> int:
    """Stars this council may recognise: 0 below 3 stars, capped at its level."""
    return min(stars, max_stars) if stars >= RECOGNISED_FROM else 0


def sheet_sections(criteria_set: str, levels: dict[str, str]) -> dict[str, float]:
    """A sheet's subtotals per section, from the points of the levels chosen."""
    points, sections = level_points(criteria_set), {item["id"]: item["section"]
                                                    for item in scorable_items(criteria_set)}
    owner = level_owner(criteria_set)
    totals = dict.fromkeys(SECTIONS, 0.0)
    for criterion, key in levels.items():
        if owner.get(key) != criterion:
            raise ValueError(f"level {key!r} is not an option of criterion {criterion!r} in set {criteria_set}")
        totals[sections[criterion]] += points[key]
    return totals


def _shown(value: float) -> str:
    return f"{value:.2f}".replace(".", ",")


def council_result(criteria_set: str, level: str, max_stars: int, panel: dict, sheets: dict,
                   spread_limit: float = DEFAULT_SPREAD_LIMIT) -> dict:
    """The council's result for one product from its members' sheets.
    `panel` and `sheets` are keyed by the member's user id (as text)."""
    strangers = sorted(set(sheets) - set(panel))
    if strangers:
        raise ValueError(f"sheets from members not present at the session: {', '.join(strangers)}")
    recused = sorted(int(uid) for uid, sheet in sheets.items() if sheet.get("recused"))
    counted = {uid: sheet for uid, sheet in sheets.items() if not sheet.get("recused")}
    if not counted:
        raise ValueError("Không còn thành viên nào chấm điểm sản phẩm này (tất cả đã xin không chấm) / "
                         "every member present recused themselves from this product")
    items = scorable_items(criteria_set)
    points = level_points(criteria_set)
    sections = {uid: sheet_sections(criteria_set, sheet.get("levels") or {}) for uid, sheet in counted.items()}
    for uid, sheet in counted.items():
        missing = [item["id"] for item in items if item["id"] not in (sheet.get("levels") or {})]
        if missing:
            raise ValueError(f"the sheet of member {uid} leaves out {', '.join(missing)}")
    totals = {uid: math.fsum(parts.values()) for uid, parts in sections.items()}
    members = len(counted)
    average = math.fsum(totals.values()) / members
    criterion_averages = {item["id"]: math.fsum(points[sheet["levels"][item["id"]]] for sheet in counted.values())
                          / members for item in items}
    band = stars_for_average(average)
    reasons = [_reason("band", f"Điểm trung bình {_shown(average)} thuộc khung {band} sao.",
                       f"Average {average:.2f}: the {band}-star band.")]

    # The highest rank at or below the band whose starred minimums all hold.
    missed: list[dict] = []
    stars = min(band, RECOGNISED_FROM - 1)  # when no rank from 3 up holds
    for rank in range(band, RECOGNISED_FROM - 1, -1):
        short = [(item, float(item["min_points_for_stars"][str(rank)])) for item in items
                 if item["min_points_for_stars"].get(str(rank)) is not None
                 and criterion_averages[item["id"]] < float(item["min_points_for_stars"][str(rank)])]
        if not short:
            stars = rank
            break
        for item, needed in short:
            average_here = criterion_averages[item["id"]]
            missed.append({"criterion_id": item["id"], "text_vi": item["text_vi"], "stars": rank,
                           "needed": needed, "average": average_here})
            reasons.append(_reason(
                "minimum", f"Tiêu chí {item['id']} ({item['text_vi']}): trung bình {_shown(average_here)} "
                           f"điểm, hạng {rank} sao cần ít nhất {needed:g} điểm.",
                f"Criterion {item['id']}: average {average_here:.2f}, {rank} stars need {needed:g}."))
    star_cap = stars if stars < band else 5

    findings = []
    for line in eliminations(criteria_set):
        votes = sum(1 for sheet in counted.values() if line["key"] in (sheet.get("eliminations") or []))
        if votes:
            findings.append({"key": line["key"], "text_vi": line["text_vi"], "votes": votes,
                             "upheld": votes * 2 > members})
    disqualified = any(finding["upheld"] for finding in findings)
    for finding in findings:
        verdict = "hồ sơ bị loại" if finding["upheld"] else "chưa quá nửa, không loại"
        reasons.append(_reason("elimination" if finding["upheld"] else "elimination_not_upheld",
                               f"{finding['text_vi']} ({finding['votes']}/{members} thành viên): {verdict}.",
                               f"Elimination finding {finding['key']}: {finding['votes']} of {members}, "
                               f"{'upheld' if finding['upheld'] else 'not upheld'}."))
    if disqualified:
        stars = 0

    recognised = recognised_stars(stars, max_stars)
    if stars >= RECOGNISED_FROM and stars > max_stars:
        reasons.append(_reason("level_cap", f"Hội đồng cấp này công nhận tối đa {max_stars} sao.",
                               f"This council recognises at most {max_stars} stars."))
    if not disqualified and stars < RECOGNISED_FROM:
        reasons.append(_reason("not_recognised", "Dưới 3 sao: sản phẩm không được công nhận.",
                               "Below 3 stars: not recognised."))
    if recused:
        reasons.append(_reason("recused", f"{len(recused)} thành viên không chấm do xung đột lợi ích.",
                               f"{len(recused)} member(s) recused."))
    spread = max(totals.values()) - min(totals.values())
    spread_exceeded = spread > float(spread_limit)
    if spread_exceeded:
        reasons.append(_reason("spread", f"Tổng điểm các thành viên chênh nhau {_shown(spread)} điểm, "
                                         f"vượt mức {float(spread_limit):g} điểm.",
                               f"Members' totals differ by {spread:.2f}, above {float(spread_limit):g}."))
    return {"level": level, "average": average, "average_shown": round(average, 2), "band_stars": band,
            "stars": stars, "star_cap": star_cap, "recognised_stars": recognised, "max_stars": max_stars,
            "members": members, "recused": recused, "totals": totals, "sections": sections,
            "criterion_averages": criterion_averages, "minimums_missed": missed, "disqualified": disqualified,
            "eliminations": findings, "spread": spread, "spread_limit": float(spread_limit),
            "spread_exceeded": spread_exceeded, "reasons": reasons}


def _reason(code: str, vi: str, en: str) -> dict:
    return {"code": code, "vi": vi, "en": en}
