"""How the simulated people behave, for `ocop simulate --years`: a product's
true quality, how long each step takes, who drops out, and reviews that
follow the product's quality.

Aimed at the programme's public figures (OCOP.md "Real shares to aim a
simulation at"): among recognised products about 70-75% 3 stars, 24-30% 4
stars, under 1% 5 stars; about a third of accepted ideas never become a
dossier; a product takes a year or more from idea to recognition.
Everything is drawn from one seeded generator, so a run is reproducible.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from engine.samples import SampleDecider

# A product's true score (what a council would give it): normal, clipped.
# Mean and spread put about 5% below 50 points, 66% in the 3-star band,
# 29% in the 4-star band and about 0.3% at 90 and over. Reviews weed out
# some of the weak ones; a product near a band's edge gets a council (or
# two, in the seed era) scoring it below; 5 stars needs 90 at the province
# and again at the ministry. Tuned on `--products 400 --years 3` with the
# decisions and the certificates' life of demo/sim_lifecycle.py (upgrades
# add a few 4-star certificates): about 70-75% 3 stars, 25-30% 4 stars
# among the certificates issued.
QUALITY_MEAN = 65.0
QUALITY_SPREAD = 9.0
# A council's own leaning on the day (on top of each member's spread).
COUNCIL_SPREAD = 1.5

# Days a step takes, by the task's element (else its form): (least, most).
# The commune's check has 15 working days (about 21 calendar days); some
# communes take longer, which fires the escalation timer.
STEP_DAYS = {
    "task_register_idea": (0, 3),
    "task_revise_dossier": (5, 40),     # over 30: the revise timer ends the cycle first
    "register_idea": (5, 30),            # an idea registered again after a return
    "receive_idea": (1, 5),
    "review_idea": (5, 20),
    "submit_plan": (30, 90),
    "review_plan": (7, 30),
    "support_record": (30, 150),
    "submit_dossier": (90, 270),
    "check_dossier": (3, 24),
    "commune_assessment": (3, 24),
    "advisory_review": (7, 30),
    "plan_outreach": (1, 3),
    "outreach_report": (60, 90),
    # the certificate's life (demo/sim_lifecycle.py)
    "reevaluation_check": (3, 15),
    "upgrade_dossier": (10, 45),
    "upgrade_check": (3, 15),
    "central_fallback": (3, 15),
    "inspection_report": (15, 240),     # over the year the plan covers
}
DEFAULT_DAYS = (1, 10)

# The reviews that accept ("accept"/"forward") or return a product.
REVIEW_FORMS = {"review_idea": "accept", "review_plan": "accept", "check_dossier": "forward",
                "commune_assessment": "forward", "advisory_review": "forward"}
RETURN_REASONS = {
    "review_idea": ("Ý tưởng chưa rõ thị trường mục tiêu, đề nghị làm rõ.",
                    "Chưa nêu nguồn nguyên liệu tại địa phương."),
    "review_plan": ("Phương án tài chính chưa khả thi, cần xây dựng lại.",
                    "Phương án chưa có kế hoạch tiêu thụ sản phẩm."),
    "check_dossier": ("Hồ sơ chưa có kết quả kiểm nghiệm chất lượng.",
                      "Thiếu giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm."),
    "commune_assessment": ("Hồ sơ chưa có kết quả kiểm nghiệm chất lượng.",
                           "Chưa chứng minh được nguồn gốc nguyên liệu tại địa phương."),
    "advisory_review": ("Tổ tư vấn đề nghị bổ sung kết quả kiểm nghiệm định kỳ.",
                        "Nhãn hàng hóa chưa đúng quy định, đề nghị hoàn thiện."),
}

# Why a producer leaves before filing a dossier (the reason of the cancel).
WITHDRAWAL_REASONS = (
    "Chủ thể rút khỏi chu trình: không đủ vốn triển khai phương án (xã báo cáo).",
    "Chủ thể rút khỏi chu trình: không hoàn thiện được sản phẩm trong năm (xã báo cáo).",
    "Chủ thể rút khỏi chu trình: ngừng sản xuất sản phẩm (xã báo cáo).",
)


def accept_chance(form_key: str, quality: float) -> float:
    """How likely a review accepts: weak products are returned more often
    (a 40-point idea about half the time, an 80-point one rarely)."""
    base = {"review_idea": 0.55, "review_plan": 0.6}.get(form_key, 0.65)
    return max(0.25, min(0.97, base + (quality - 50.0) * 0.02))


def drop_chance(quality: float) -> float:
    """How likely a producer whose idea was accepted never files a dossier:
    about a third overall, more among the weak."""
    return max(0.12, min(0.7, 0.36 - (quality - QUALITY_MEAN) * 0.012))


@dataclass
class Behaviour:
    """The seeded draws of one simulation."""

    rng: random.Random

    def quality(self) -> float:
        return max(20.0, min(97.0, self.rng.gauss(QUALITY_MEAN, QUALITY_SPREAD)))

    def better(self) -> float:
        """How much a product gains between a failed year and its next try."""
        return max(0.0, self.rng.gauss(4.0, 3.0))

    def days(self, element_id: str, form_key: str) -> float:
        """Days the task waits before its person completes it (fractional:
        the time of day is drawn too)."""
        low, high = STEP_DAYS.get(element_id) or STEP_DAYS.get(form_key) or DEFAULT_DAYS
        return self.rng.uniform(low, high)

    def drops_out(self, quality: float) -> bool:
        return self.rng.random() < drop_chance(quality)

    def council_quality(self, quality: float) -> float:
        """The quality one council sees: the product's, give or take the day."""
        return quality + self.rng.gauss(0.0, COUNCIL_SPREAD)

    def withdrawal_reason(self) -> str:
        return self.rng.choice(WITHDRAWAL_REASONS)


# A lifecycle dossier the commune finds complete (else returned once or twice).
LIFECYCLE_CHECK_COMPLETE = 0.85


def inspection_failure_chance(quality: float) -> float:
    """How likely an inspection finds the criteria no longer kept: about one
    in ten, more for a weak product (with a tenth of the certificates
    inspected a year, about 1% revoked a year)."""
    return max(0.03, min(0.4, 0.1 + (62.0 - quality) * 0.01))


class QualityDecider(SampleDecider):
    """SampleDecider whose reviews and inspections follow the product's quality."""

    def _reevaluation_check(self, **_) -> dict:
        if self.rng.random() < LIFECYCLE_CHECK_COMPLETE:
            return {"complete": True, "local_origin": True, "local_labour": True}
        return {"complete": False, "reasons": "Thiếu phiếu kết quả kiểm nghiệm định kỳ."}

    def _upgrade_check(self, **_) -> dict:
        return self._reevaluation_check()

    def _inspection_report(self, today, quality=None, **_) -> dict:
        report = {"inspected_on": today.isoformat(), "criteria_maintained": True, "mark_used_correctly": True,
                  "findings": "", "propose_revocation": False, "ground": None}
        if self.rng.random() < inspection_failure_chance(66.0 if quality is None else quality):
            report.update(criteria_maintained=False, propose_revocation=True, ground="criteria_not_maintained",
                          findings="Không duy trì kiểm nghiệm định kỳ, bao bì khác hồ sơ đã công nhận.")
        return report

    def form(self, form_key, criteria_set, today, quality=None):
        if form_key in REVIEW_FORMS and quality is not None:
            data = super().form(form_key, criteria_set, today, quality)
            if self.rng.random() < accept_chance(form_key, quality):
                data.update(decision=REVIEW_FORMS[form_key], reasons="")
            else:
                data.update(decision="return", reasons=self.rng.choice(RETURN_REASONS[form_key]))
            return data
        return super().form(form_key, criteria_set, today, quality)
