"""Lanes are roles. A lane's name is the role's Vietnamese label (or the role
key itself); each role acts for a product's area at one level."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    key: str
    label_vi: str
    label_en: str
    level: str | None  # jurisdiction level the role acts at; None for producer


# Roles that own lanes of the cycle diagrams.
LANE_ROLES = (
    Role("producer", "Chủ thể OCOP", "Producer", None),
    Role("commune_officer", "Cán bộ OCOP xã", "Commune OCOP officer", "commune"),
    Role("district_officer", "Cán bộ OCOP huyện", "District OCOP officer", "district"),
    Role("district_council", "Hội đồng đánh giá cấp huyện", "District council", "district"),
    Role("province_advisory", "Tổ tư vấn cấp tỉnh", "Province advisory team", "province"),
    Role("province_council", "Hội đồng đánh giá cấp tỉnh", "Province council", "province"),
    Role("central_council", "Hội đồng đánh giá cấp Trung ương", "Central council", "central"),
    # After the council (26/2026 Art. 5-9): who issues decisions and looks
    # after certificates. The People's Committees and the ministry record
    # their signed decisions; the province's coordination office inspects
    # after recognition and takes findings that may lead to revocation.
    Role("district_committee", "Ủy ban nhân dân huyện", "District People's Committee", "district"),
    Role("province_committee", "Ủy ban nhân dân tỉnh", "Provincial People's Committee", "province"),
    Role("province_office", "Văn phòng Điều phối OCOP tỉnh", "Provincial OCOP coordination office", "province"),
    Role("ministry", "Bộ Nông nghiệp và Môi trường", "Ministry of Agriculture and Environment", "central"),
)

# Roles that never own a lane: they manage, audit or administer.
OTHER_ROLES = (
    Role("program_manager", "Quản lý chương trình", "Program manager", "province"),
    Role("auditor", "Kiểm toán viên", "Auditor", "central"),
    Role("admin", "Quản trị hệ thống", "Administrator", "central"),
)

ROLES = {role.key: role for role in LANE_ROLES + OTHER_ROLES}
_BY_LANE = {role.label_vi.casefold(): role for role in LANE_ROLES} | {
    role.key: role for role in LANE_ROLES
}


def role_for_lane(lane: str | None) -> Role | None:
    """The role a lane stands for, or None when the name is not a known role."""
    if not lane:
        return None
    return _BY_LANE.get(" ".join(lane.split()).casefold())
