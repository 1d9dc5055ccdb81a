"""The figures of `ocop simulate --years`, counted from the database the
run left (the cycle instances of its products, their audit events and the
certificate table), never from the simulator's own counters.

Per calendar year (of the event) and in total: ideas registered (and how
many of them by a product registering again after a year without
recognition), ideas accepted, dossiers filed, producers who left before a dossier (withdrawn
by a cancel, or their plan returned too often), dossiers lapsed (a
returned dossier not revised within 30 days), products evaluated by a
council, recognised by stars and their shares, not recognised;
certificates issued, valid at the end, expired, re-evaluated, upgraded,
revoked; and the simulated days from idea to recognition.
"""
from __future__ import annotations

import statistics
from collections import Counter
from datetime import date, datetime, timezone

from sqlalchemy import select

from engine import diagram, process_ids
from engine.bpmn_engine import BpmnEngine
from engine.calendar import LOCAL_ZONE
from storage.models import AuditEvent, ProcessInstance
from storage.recognition_models import CERT_EXPIRED, CERT_REVOKED, CERT_VALID, Certificate

COUNTED = ("ideas", "registered_again", "ideas_accepted", "dossiers", "dropped_before_dossier", "withdrawn", "plan_limit",
           "dossier_lapsed", "escalations", "evaluated", "recognised", "not_recognised", "certificates_issued",
           "new", "expired", "re_evaluated", "upgraded", "revoked", "reevaluations_filed",
           "reevaluations_late", "upgrade_requests", "inspections")
SIGN_OFFS = ("task_sign_off_district", "task_sign_off_province", "task_sign_off_central")
WATCHED = ("task_review_idea", "task_submit_dossier", *SIGN_OFFS)
# The commune's check overdue (15 working days): the worker's timer escalates it.
ESCALATIONS = ("timer_check_dossier_late", "timer_assessment_late")
REEVALUATION_DOSSIER = "task_reevaluation_dossier"
# A re-evaluation not decided within 45 days of its complete dossier: the worker's timer escalates it.
REEVALUATION_LATE = ("timer_opinion_late", "timer_attendance_late", "timer_sign_off_late", "timer_decision_late",
                     "timer_decision_central_late")
STARTED_COUNTS = {process_ids.UPGRADE_PROCESS: "upgrade_requests", process_ids.INSPECTION_PROCESS: "inspections"}
CHUNK = 500


def _year(moment) -> int:
    if isinstance(moment, datetime):
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(LOCAL_ZONE)
    return moment.year


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def figures(engine: BpmnEngine, start: date, end: date, product_ids: list[int]) -> dict:
    years = {year: Counter() for year in range(start.year, end.year)}
    stars = {year: Counter() for year in years}
    durations: list[float] = []
    with engine.db.reading() as session:
        instances = []
        for first in range(0, len(product_ids), CHUNK):
            instances += session.execute(
                select(ProcessInstance.id, ProcessInstance.product_id, ProcessInstance.status, ProcessInstance.end_event,
                       ProcessInstance.stars, ProcessInstance.started_at, ProcessInstance.finished_at)
                .where(ProcessInstance.product_id.in_(product_ids[first:first + CHUNK]),
                       ProcessInstance.process_id == diagram.PRODUCT_PROCESS)).all()
        ids = [row.id for row in instances]
        accepted: dict[int, datetime] = {}
        filed: dict[int, datetime] = {}
        evaluated: dict[int, datetime] = {}
        cancelled: dict[int, datetime] = {}
        escalated: list[datetime] = []
        for first in range(0, len(ids), CHUNK):
            for instance_id, kind, element_id, at, data in session.execute(
                    select(AuditEvent.instance_id, AuditEvent.kind, AuditEvent.element_id, AuditEvent.at,
                           AuditEvent.data)
                    .where(AuditEvent.instance_id.in_(ids[first:first + CHUNK]),
                           (AuditEvent.kind == "cancelled")
                           | ((AuditEvent.kind == "timer_fired") & AuditEvent.element_id.in_(ESCALATIONS))
                           | ((AuditEvent.kind == "task_completed") & AuditEvent.element_id.in_(WATCHED)))
                    .order_by(AuditEvent.instance_id, AuditEvent.seq)):
                if kind == "cancelled":
                    cancelled[instance_id] = at
                elif kind == "timer_fired":
                    escalated.append(at)
                elif element_id == "task_review_idea":
                    if (data.get("form") or {}).get("decision") == "accept":
                        accepted.setdefault(instance_id, at)
                elif element_id == "task_submit_dossier":
                    filed.setdefault(instance_id, at)
                else:
                    evaluated.setdefault(instance_id, at)
        certificates = []
        lifecycle = []
        for first in range(0, len(product_ids), CHUNK):
            chunk = product_ids[first:first + CHUNK]
            certificates += session.execute(
                select(Certificate.kind, Certificate.status, Certificate.issued_on, Certificate.valid_until,
                       Certificate.status_changed_on, Certificate.stars)
                .where(Certificate.product_id.in_(chunk))).all()
            lifecycle += session.execute(
                select(ProcessInstance.id, ProcessInstance.process_id, ProcessInstance.started_at)
                .where(ProcessInstance.product_id.in_(chunk),
                       ProcessInstance.process_id.in_(process_ids.LIFECYCLE_PROCESSES))).all()
        validity_ids = [row.id for row in lifecycle if row.process_id == process_ids.CERTIFICATE_PROCESS]
        reevaluations: dict[int, datetime] = {}
        late: dict[int, datetime] = {}
        for first in range(0, len(validity_ids), CHUNK):
            for instance_id, kind, at in session.execute(
                    select(AuditEvent.instance_id, AuditEvent.kind, AuditEvent.at)
                    .where(AuditEvent.instance_id.in_(validity_ids[first:first + CHUNK]),
                           ((AuditEvent.kind == "task_completed") & (AuditEvent.element_id == REEVALUATION_DOSSIER))
                           | ((AuditEvent.kind == "timer_fired") & AuditEvent.element_id.in_(REEVALUATION_LATE)))
                    .order_by(AuditEvent.instance_id, AuditEvent.seq)):
                (reevaluations if kind == "task_completed" else late).setdefault(instance_id, at)

    def count(moment, what: str, by: int = 1) -> None:
        year = _year(moment)
        if year in years:
            years[year][what] += by

    for at in escalated:
        count(at, "escalations")
    cycles_before: Counter = Counter()
    for row in sorted(instances, key=lambda r: (r.started_at, r.id)):
        count(row.started_at, "ideas")
        if cycles_before[row.product_id]:
            count(row.started_at, "registered_again")
        cycles_before[row.product_id] += 1
        ended_at = row.finished_at or cancelled.get(row.id)
        if row.id in accepted:
            count(accepted[row.id], "ideas_accepted")
            if row.id not in filed and row.status != "running":
                count(ended_at, "dropped_before_dossier")
        if row.id in filed:
            count(filed[row.id], "dossiers")
        if row.id in evaluated:
            count(evaluated[row.id], "evaluated")
        if row.status == "cancelled" and row.id not in filed:
            count(ended_at, "withdrawn")
        if row.end_event == "end_plan_limit":
            count(ended_at, "plan_limit")
        if row.end_event == "end_dossier_expired":
            count(ended_at, "dossier_lapsed")
        if row.end_event == "end_not_recognised":
            count(ended_at, "not_recognised")
        if row.end_event == "end_recognised" and row.stars:
            count(ended_at, "recognised")
            if _year(ended_at) in stars:
                stars[_year(ended_at)][row.stars] += 1
                durations.append((ended_at - row.started_at).total_seconds() / 86400)
    for at in reevaluations.values():
        count(at, "reevaluations_filed")
    for at in late.values():
        count(at, "reevaluations_late")
    for row in lifecycle:
        if row.process_id in STARTED_COUNTS:
            count(row.started_at, STARTED_COUNTS[row.process_id])
    valid_at_end = 0
    valid_stars: Counter = Counter()
    certificate_stars = {year: Counter() for year in years}
    for kind, status, issued_on, valid_until, changed_on, stars_of in certificates:
        count(issued_on, "certificates_issued")
        if issued_on.year in certificate_stars:
            certificate_stars[issued_on.year][stars_of] += 1
        count(issued_on, {"re_recognised": "re_evaluated", "upgraded": "upgraded"}.get(kind, "new"), 1)
        if status == CERT_EXPIRED:
            count(changed_on or valid_until, "expired")
        if status == CERT_REVOKED:
            count(changed_on or issued_on, "revoked")
        if status == CERT_VALID and valid_until >= end:
            valid_at_end += 1
            valid_stars[stars_of] += 1
    per_year = {year: {**{what: years[year][what] for what in COUNTED}, "stars": _stars(stars[year]),
                       "certificate_stars": _stars(certificate_stars[year])}
                for year in years}
    total_counter = sum(years.values(), Counter())
    total_stars = sum(stars.values(), Counter())
    total = {**{what: total_counter[what] for what in COUNTED}, "stars": _stars(total_stars),
             "certificate_stars": _stars(sum(certificate_stars.values(), Counter())),
             "certificates_valid_at_end": valid_at_end,
             "certificates_valid_at_end_by_stars": {str(n): valid_stars[n] for n in (3, 4, 5)},
             "still_running": sum(1 for row in instances if row.status == "running")}
    accepted_total = total["ideas_accepted"]
    total["dropped_share_of_accepted"] = (round(total["dropped_before_dossier"] / accepted_total, 3)
                                          if accepted_total else None)
    return {"products": len(product_ids), "per_year": per_year, "total": total,
            "days_idea_to_recognition": {"median": _round(statistics.median(durations) if durations else None),
                                         "p90": _round(_percentile(durations, 0.9)), "count": len(durations)}}


def _round(value):
    return None if value is None else round(value, 1)


def _stars(counter: Counter) -> dict:
    recognised = sum(counter[n] for n in (3, 4, 5))
    return {str(n): {"count": counter[n], "share": round(counter[n] / recognised, 3) if recognised else None}
            for n in (3, 4, 5)}


def _star_rows(tables: list[dict], key: str, width: int) -> list[str]:
    """One line a rank: its count and share among the recognised (`stars`)
    or the certificates issued (`certificate_stars`)."""
    lines = []
    for n in ("3", "4", "5"):
        cells = []
        for t in tables:
            star = t[key][n]
            share = "" if star["share"] is None else f" ({star['share'] * 100:.1f}%)"
            cells.append(f"{star['count']}{share}")
        lines.append(f"{'  ' + n + ' sao / stars':<{width}}" + "".join(f"{c:>14}" for c in cells))
    return lines


def format_years(result: dict) -> str:
    """The figures as a table: one column a year and the total."""
    years = sorted(result["per_year"])
    columns = [str(y) for y in years] + ["Tổng / total"]
    rows = [("Ý tưởng đăng ký / ideas", "ideas"), ("  đăng ký lại / registered again", "registered_again"),
            ("Ý tưởng được chấp nhận / accepted", "ideas_accepted"),
            ("Bỏ cuộc trước hồ sơ / dropped before dossier", "dropped_before_dossier"),
            ("  rút lui / withdrawn (cancelled)", "withdrawn"),
            ("  phương án trả quá số lần / plan limit", "plan_limit"),
            ("Hồ sơ đã nộp / dossiers filed", "dossiers"),
            ("Hồ sơ quá hạn nộp lại / dossier lapsed (30 days)", "dossier_lapsed"),
            ("Xã kiểm tra quá hạn / check escalated", "escalations"),
            ("Được hội đồng đánh giá / evaluated", "evaluated"),
            ("Không đạt / not recognised", "not_recognised"),
            ("Được công nhận / recognised", "recognised")]
    tables = [*(dict(result["per_year"][y]) for y in years), result["total"]]
    width = 48
    stock = (f" + {result['stock']} của các năm trước / from the years before"
             if result.get("stock") else "")
    lines = [f"Sản phẩm / products: {result['products']}{stock} ({result['start']} → {result['end']})",
             " " * width + "".join(f"{c:>14}" for c in columns)]
    for label, key in rows:
        lines.append(f"{label:<{width}}" + "".join(f"{t[key]:>14}" for t in tables))
    lines += _star_rows(tables, "stars", width)
    for label, key in (("Giấy chứng nhận cấp / certificates issued", "certificates_issued"),
                       ("  mới / new", "new"), ("  đánh giá lại / re-recognised", "re_evaluated"),
                       ("  nâng hạng / upgraded", "upgraded")):
        lines.append(f"{label:<{width}}" + "".join(f"{t[key]:>14}" for t in tables))
    lines.append("Giấy chứng nhận cấp theo hạng / certificates issued by stars:")
    lines += _star_rows(tables, "certificate_stars", width)
    for label, key in (("Hồ sơ đánh giá lại đã nộp / re-evaluation dossiers", "reevaluations_filed"),
                       ("  quá 45 ngày / past 45 days (escalated)", "reevaluations_late"),
                       ("Đề nghị nâng hạng / upgrade requests", "upgrade_requests"),
                       ("Kiểm tra sau công nhận / inspections", "inspections"),
                       ("Hết hạn / expired", "expired"), ("Thu hồi / revoked", "revoked")):
        lines.append(f"{label:<{width}}" + "".join(f"{t[key]:>14}" for t in tables))
    total = result["total"]
    share = total["dropped_share_of_accepted"]
    lines.append(f"Giấy chứng nhận còn hiệu lực cuối kỳ / certificates valid at the end: "
                 f"{total['certificates_valid_at_end']} ("
                 + ", ".join(f"{n}★ {c}" for n, c in total["certificates_valid_at_end_by_stars"].items()) + ")")
    lines.append("Bỏ cuộc / dropped before dossier, of accepted ideas: "
                 + ("—" if share is None else f"{share * 100:.1f}%"))
    lines.append(f"Còn đang thực hiện / still running: {total['still_running']}")
    days = result["days_idea_to_recognition"]
    lines.append(f"Ngày từ ý tưởng đến công nhận / days idea → recognition: median {days['median']}, "
                 f"p90 {days['p90']} ({days['count']} products)")
    if result.get("tasks_nobody_fills"):  # the simulator's own note: forms it cannot fill yet
        lines.append("Việc chưa mô phỏng / tasks left waiting (no sample data yet): " + ", ".join(
            f"{form} {count}" for form, count in result["tasks_nobody_fills"].items()))
    return "\n".join(lines)
