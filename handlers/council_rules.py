"""A council's rules that are pure arithmetic on its roster: the quorum.

The SAME function decides whether a session may open
(programme.councils.open_session, before anything is written) and whether
the panel handler accepts the attendance it is given, so the two can never
disagree. Provinces set the rule as data on their council
(quorum_fraction, chair_required; default: at least 3/4 of the members,
chair present).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# 0.75 x 4 members is 3.0000000000000004 in floating point: not 4 required.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Quorum:
    """Whether the members present make a quorum, and the figures behind it."""

    met: bool
    present: int         # members of the roster who are present
    required: int        # members who must be present
    roster: int          # members on the roster
    chair_present: bool
    chair_required: bool = True

    def message_vi(self) -> str:
        """Why the session may (not) open, in Vietnamese, naming the figures."""
        chair = "có mặt" if self.chair_present else "vắng mặt"
        text = (f"Có mặt {self.present}/{self.roster} thành viên (cần ít nhất {self.required}); "
                f"chủ tịch hội đồng {chair}.")
        if self.met:
            return "Đủ điều kiện họp. " + text
        reasons = []
        if self.present < self.required:
            reasons.append("không đủ số thành viên")
        if self.chair_required and not self.chair_present:
            reasons.append("chủ tịch hội đồng phải có mặt")
        return "Không đủ điều kiện họp (" + ", ".join(reasons) + "). " + text

    def message_en(self) -> str:
        chair = "present" if self.chair_present else "absent"
        return (f"{'Quorum met' if self.met else 'No quorum'}: {self.present} of {self.roster} members "
                f"present (at least {self.required} needed); the chair is {chair}"
                + (" and must be present." if self.chair_required and not self.chair_present else "."))


def quorum(members: list[dict], present, quorum_fraction: float, chair_required: bool) -> Quorum:
    """`members`: the roster, [{"user_id", "role", ...}]; `present`: user
    ids (ids not on the roster do not count). Met when at least
    ceil(fraction x roster) members are present, at least one, and, when
    `chair_required`, the chair is among them."""
    roster_ids = {int(member["user_id"]) for member in members}
    here = {int(user_id) for user_id in present} & roster_ids
    required = max(1, math.ceil(float(quorum_fraction) * len(roster_ids) - _EPSILON))
    chairs = {int(member["user_id"]) for member in members if member.get("role") == "chair"}
    chair_present = bool(chairs & here)
    met = len(here) >= required and (chair_present or not chair_required)
    return Quorum(met, len(here), required, len(roster_ids), chair_present, bool(chair_required))
