"""Plausible form submissions, for the demo data and `ocop simulate`.

`SampleDecider` fills any registered form from a seeded random generator,
so a run is reproducible: same seed, same decisions, same scores.
"""
from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from storage.criteria import scorable_items, section_maxima, star_bands

COUNCIL_MEMBERS = ("Chủ tịch hội đồng", "Thành viên 1", "Thành viên 2", "Thành viên 3", "Thư ký")


@dataclass
class SampleDecider:
    rng: random.Random
    accept_rate: float = 0.75     # chance a review accepts / forwards
    score_mean: float = 66.0      # product quality: mean council total
    score_spread: float = 14.0
    member_spread: float = 2.5    # how far council members' totals scatter around the quality
    # With councils of `outlier_every` members, the first sheet of every other
    # round is `outlier_offset` points off (0: never): members who disagree,
    # then agree when they score again -- the dry run's way through the
    # re-scoring loop at every level.
    outlier_every: int = 0
    outlier_offset: float = -15.0
    _sheets: int = 0

    def form(self, form_key: str, criteria_set: str, today: date, quality: float | None = None) -> dict:
        """Data for one task; `quality` (a product's true score) keeps a
        product's councils consistent with each other."""
        maker = getattr(self, f"_{form_key}")
        return maker(criteria_set=criteria_set, today=today, quality=quality)

    def product_quality(self) -> float:
        return max(5.0, min(99.0, self.rng.gauss(self.score_mean, self.score_spread)))

    # --- one method per form key --------------------------------------------

    def _decision(self, accept: str) -> dict:
        if self.rng.random() < self.accept_rate:
            return {"decision": accept, "reasons": ""}
        return {"decision": "return", "reasons": self.rng.choice((
            "Thiếu thông tin về nguồn nguyên liệu, đề nghị bổ sung.",
            "Mô tả sản phẩm chưa rõ, cần làm rõ thị trường mục tiêu.",
            "Hồ sơ chưa có kết quả kiểm nghiệm chất lượng.",
            "Phương án tài chính chưa khả thi, cần xây dựng lại."))}

    def _confirm_done(self, **_) -> dict:
        return {}

    def _register_idea(self, **_) -> dict:
        return {"registration_form": self.rng.choice(("01", "02")),
                "product_description": "Sản phẩm truyền thống của địa phương, sản xuất thủ công.",
                "raw_materials": "Nguyên liệu trồng tại địa phương",
                "expected_market": "Tiêu thụ trong tỉnh và các cửa hàng OCOP"}

    def _receive_idea(self, **_) -> dict:
        return {"form_complete": True, "notes": "Đã tiếp nhận đủ phiếu đăng ký."}

    def _review_idea(self, **_) -> dict:
        return {**self._decision("accept"), "criteria_checked": ["local_material", "market"]}

    def _submit_plan(self, **_) -> dict:
        return {"plan_summary": "Phương án mở rộng sản xuất, chuẩn hóa bao bì, nhãn mác.",
                "investment_vnd": self.rng.randrange(50, 900) * 1_000_000}

    def _review_plan(self, **_) -> dict:
        return {**self._decision("accept"), "support_to_arrange": ["training", "consulting"]}

    def _support_record(self, today: date, **_) -> dict:
        return {"visited_on": (today - timedelta(days=self.rng.randrange(1, 30))).isoformat(),
                "activities": "Hướng dẫn hoàn thiện bao bì, truy xuất nguồn gốc.",
                "support_types": ["consulting"]}

    def _submit_dossier(self, **_) -> dict:
        return {"evidence": ["business_registration", "food_safety_licence", "lab_test", "product_story"],
                "notes": "Hồ sơ đầy đủ."}

    def _check_dossier(self, **_) -> dict:
        return {**self._decision("forward"), "dossier_complete": True}

    def _commune_assessment(self, **_) -> dict:
        return {**self._decision("forward"), "local_origin": True, "local_labour": True}

    def _advisory_review(self, **_) -> dict:
        return {**self._decision("forward"), "site_visit": self.rng.random() < 0.3}

    def _score_product(self, criteria_set: str, quality: float | None, **_) -> dict:
        maxima = section_maxima(criteria_set)
        total_max = sum(maxima.values())
        quality = self.product_quality() if quality is None else quality
        sheets = []
        for member in COUNCIL_MEMBERS[: self.rng.randrange(3, 6)]:
            total = max(0.0, min(total_max, self.rng.gauss(quality, 3.0)))
            sheets.append({"member": member, **{
                f"part_{part.lower()}": round(total * maximum / total_max, 1)
                for part, maximum in maxima.items()}})
        return {"sheets": sheets}

    def _council_sheet(self, criteria_set: str, quality: float | None, **_) -> dict:
        """One member's sheet: levels whose points add up near the product's
        quality, members differing by a few points as real councils do."""
        quality = self.product_quality() if quality is None else quality
        total = self.rng.gauss(quality, self.member_spread)
        if self.outlier_every and self._sheets % (2 * self.outlier_every) == 0:
            total += self.outlier_offset
        self._sheets += 1
        return {"levels": levels_for_total(criteria_set, total)}

    def _council_spread(self, **_) -> dict:
        return {"notes": "Hội đồng đã thảo luận các tiêu chí chấm lệch nhau và thống nhất chấm lại."}

    def _council_sign_off(self, **_) -> dict:
        return {"confirmed": True, "notes": ""}

    def _central_fallback(self, **_) -> dict:
        # The province chair mostly recognises on the ministry's result.
        return {"choice": "recognise", "reason": "Công nhận theo kết quả đánh giá của Bộ."}

    def _plan_outreach(self, today: date, **_) -> dict:
        return {"window_opens": today.isoformat(),
                "window_closes": (today + timedelta(days=120)).isoformat(),
                "channels": ["meeting", "loudspeaker"], "target_producers": 20}

    def _outreach_report(self, **_) -> dict:
        return {"meetings_held": self.rng.randrange(2, 10), "producers_reached": self.rng.randrange(10, 60)}

    # The certificate lifecycle (issue 16, helper B1).
    def _reevaluation_dossier(self, **_) -> dict:
        return {"lab_tests": "Kiểm nghiệm định kỳ đạt các chỉ tiêu công bố.",
                "markets": self.rng.choice(("Thêm hai điểm bán OCOP.", "Bán thêm trên sàn thương mại điện tử.")),
                "legal_papers": ["Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm, còn hiệu lực"]}

    def _reevaluation_check(self, **_) -> dict:
        if self.rng.random() < self.accept_rate:
            return {"complete": True, "local_origin": True, "local_labour": True}
        return {"complete": False, "reasons": "Thiếu phiếu kết quả kiểm nghiệm định kỳ."}

    def _upgrade_dossier(self, criteria_set: str, **_) -> dict:
        touched = [item["id"] for item in scorable_items(criteria_set)][:2]
        return {"summary": "Đầu tư dây chuyền đóng gói, mở rộng thị trường.", "criteria_touched": touched,
                "changes": "Bao bì mới, truy xuất nguồn gốc bằng mã QR, thêm kênh phân phối.",
                "evidence": ["barcode_traceability", "lab_test"]}

    def _upgrade_check(self, **_) -> dict:
        return self._reevaluation_check()


    # One inspection in this many finds the criteria no longer kept and
    # proposes a revocation (Art. 9; revocations are rare in the real programme).
    inspection_failure_every = 20

    def _inspection_report(self, today: date, **_) -> dict:
        if self.rng.randrange(self.inspection_failure_every) == 0:
            return {"inspected_on": today.isoformat(), "criteria_maintained": False, "mark_used_correctly": True,
                    "findings": "Không duy trì kiểm nghiệm định kỳ, bao bì khác hồ sơ đã công nhận.",
                    "propose_revocation": True, "ground": "criteria_not_maintained"}
        return {"inspected_on": today.isoformat(), "criteria_maintained": True, "mark_used_correctly": True,
                "findings": "", "propose_revocation": False, "ground": None}

def levels_for_total(criteria_set: str, total: float) -> dict[str, str]:
    # Whole points below the total: 49.9 aims at 49 and stays in its band.
    return dict(_levels_for_total(criteria_set, math.floor(max(0.0, min(100.0, total)))))


@functools.lru_cache(maxsize=4096)
def _levels_for_total(criteria_set: str, target: int) -> tuple[tuple[str, str], ...]:
    """A level for every criterion of the set whose points add up to
    `total` in whole points (rounded down), or the nearest total the sheet allows (at or above it
    when there is a choice). The starred minimums of the rank `total` falls
    in are met, so a sheet aiming at 75 is a 4-star sheet, not one capped
    by a minimum. (A small subset-sum over whole points: at most 101 sums.)"""
    items = scorable_items(criteria_set)
    rank = next((band["stars"] for band in star_bands() if target >= band["min_inclusive"]), 1)
    reachable: dict[int, list[str]] = {0: []}
    for item in items:
        needed = item["min_points_for_stars"].get(str(rank)) if rank >= 3 else None
        options = [lv for lv in item["levels"] if needed is None or lv["points"] >= needed] or item["levels"]
        step: dict[int, list[str]] = {}
        for points_so_far, keys in reachable.items():
            for level in options:
                reached = points_so_far + int(level["points"])
                step.setdefault(reached, keys + [level["key"]])
        reachable = step
    best = min(reachable, key=lambda reached: (abs(reached - target), reached < target))
    return tuple((item["id"], key) for item, key in zip(items, reachable[best], strict=True))
