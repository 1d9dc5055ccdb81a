"""What comes after the council in `ocop simulate --years` (issue 16): the
numbered recognition decisions, and a certificate's life -- re-evaluation,
upgrade, inspection after recognition, revocation -- done by the people
concerned through the programme's use cases, on the simulation's clock.

A mixin of demo.sim_years.YearsSimulation (it uses its engine, driver,
behaviour, event queue and per-instance quality):
- decisions: the People's Committee of the area (the district's in the
  seed era's three-tier provinces, the province's, the ministry) issues one
  numbered decision per round with every product waiting in its lane, a
  few days after the products start waiting and before the round's
  decide-by date (programme.recognition.issue_decision, which also starts
  each new certificate's validity instance);
- re-evaluation: most producers file their dossier inside the 180-120-day
  window (the product's quality drifts a little since the last
  recognition); the commune checks it; council members give written
  opinions (personal tasks, completed as their assignee); the council
  meets only when the opinions diverge; the decision follows;
- upgrades: a few 3-star producers whose quality grew ask for an upgrade
  (programme.certificates.start_upgrade); the upgrade joins the province's
  round like a cycle product;
- inspections: each province's office plans a share of its valid
  certificates a year (programme.inspections.plan_inspections); a report's
  findings follow the product's quality, and a failing one proposes a
  revocation, decided by the authority for the stars within 15 days
  (programme.revocations.decide).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from demo.sim_councils import Sitting, hold_sitting
from engine.calendar import LOCAL_ZONE
from engine.errors import OcopError
from engine.process_ids import LIFECYCLE_PROCESSES
from engine.samples import levels_for_total
from programme import revocations
from programme.certificates import WINDOW_OPENS_DAYS, CertificateRefused, start_upgrade
from programme.inspections import plan_inspections
from programme.recognition import issue_decision, waiting_for_decision
from storage.decisions import number_taken
from storage.models import InboxTask, ProcessInstance, RoleAssignment
from storage.recognition_models import CERT_VALID, Certificate, Decision, EvaluationRound, RoundEntry

# Who decides in which lane, and the suffix of its decisions' numbers.
AUTHORITY_OF_ROLE = {"district_committee": "district", "province_committee": "province", "ministry": "ministry"}
NUMBER_SUFFIX = {"district": "QĐ-UBND", "province": "QĐ-UBND", "ministry": "QĐ-BNNMT"}
SIGNER = {"district": "Phó Chủ tịch Ủy ban nhân dân huyện", "province": "Phó Chủ tịch Ủy ban nhân dân tỉnh",
          "ministry": "Thứ trưởng Bộ Nông nghiệp và Môi trường"}
DECISION_AFTER = (5, 20)           # days a decision takes once products wait for it
FILES_REEVALUATION = 0.8           # producers who file a re-evaluation dossier in the window
FILED_WITHIN = (3, 55)             # days into the 60-day window
REFILED_WITHIN = (3, 12)           # days to file again a returned dossier
QUALITY_DRIFT = 2.5                # spread of a product's change since its last recognition
OPINION_DAYS = (3, 25)             # a member's written opinion
DIVERGING = 0.12                   # re-evaluations where one member's opinion stands apart
DIVERGENCE = 14.0                  # by this many points (the council meets)
MEETING_AFTER = (7, 20)            # days from the divergence to the meeting
UPGRADE_FROM_STARS = 3             # 4-star products are not upgraded here: 5 stars stay rare
UPGRADE_AFTER_DAYS = 365           # a certificate this old at least
UPGRADE_TARGET = 72.0              # quality a producer thinks worth an upgrade
UPGRADE_ASKS = 0.15                # of those, who ask in a given month
GROWTH_PER_MONTH = (0.0, 0.5)      # a certified product's quality drift a month (mean, spread): some grow, some slip
INSPECTED_SHARE = 0.10             # of a province's valid certificates, inspected a year
REVOCATION_AFTER = (2, 12)         # days from the inspection's finding to the decision (within 15)
REVOKED_SHARE = 0.85               # findings that end in a revocation (the others: kept, reason given)
WORKING_HOURS = (9, 16)            # local hours decisions are signed (the same date in UTC)


class Lifecycle:
    """The decisions and the certificate lifecycle of a YearsSimulation."""

    # --- which lifecycle instances belong to the simulation --------------------------------

    def _discover(self) -> None:
        """Lifecycle instances started for the simulation's products since the
        last look (validity instances started by a decision, upgrades,
        inspections) join its instances, with the product's quality now."""
        with self.engine.db.reading() as session:
            rows = session.execute(select(ProcessInstance.id, ProcessInstance.product_id, ProcessInstance.jurisdiction_id)
                                   .where(ProcessInstance.id > self.lifecycle_seen,
                                          ProcessInstance.process_id.in_(LIFECYCLE_PROCESSES))
                                   .order_by(ProcessInstance.id)).all()
        for instance_id, product_id, commune_id in rows:
            self.lifecycle_seen = max(self.lifecycle_seen, instance_id)
            if product_id not in self.product_rows:
                continue  # the demo's own certificates: not the simulation's
            self.instances.add(instance_id)
            self.product_of.setdefault(instance_id, product_id)
            self.quality[instance_id] = self.product_quality.get(product_id, 66.0)
            self.criteria_set[instance_id] = self.product_rows[product_id][0] or "S07"
            self.province_of[instance_id] = self._province(commune_id)

    def _lifecycle_task(self, task: InboxTask) -> bool:
        """Schedule a task the cycle's one-by-one way does not cover; True
        when it was one of those (or is left to a session)."""
        if task.form_key == "recognition_decision":
            self._decision_due(task)
        elif task.form_key == "revocation_decision":
            when = self._now() + timedelta(days=self.calendar_rng.uniform(*REVOCATION_AFTER))
            self._at(self._working_hours(when), "revocation_decision", task)
        elif task.element_id == "task_attendance_reevaluation":
            when = self._now() + timedelta(days=self.calendar_rng.uniform(*MEETING_AFTER))
            self._at(self._working_hours(when), "meeting", task)
        elif task.element_id == "task_opinion_reevaluation":
            self._at(self._now() + timedelta(days=self.behaviour.rng.uniform(*OPINION_DAYS)), "complete", task)
        elif task.element_id == "task_sign_off_reevaluation":
            self._at(self._now() + timedelta(days=self.behaviour.rng.uniform(1, 5)), "complete", task)
        elif task.form_key == "reevaluation_dossier":
            self._file_or_not(task)
        else:
            return task.form_key in self.left_to_sessions
        return True

    def _now(self) -> datetime:
        return self.engine.clock.now

    def _working_hours(self, moment: datetime) -> datetime:
        from demo.sim_years import local_time
        day = moment.astimezone(LOCAL_ZONE).date()
        return max(local_time(day, self.calendar_rng.uniform(*WORKING_HOURS)), self._now())

    # --- decisions ------------------------------------------------------------------------

    def _decision_due(self, task: InboxTask) -> None:
        """The first product waiting in a lane and area sets the day its
        decision is issued: some days on, before its round's decide-by date."""
        key = (task.role, task.jurisdiction_id)
        if key in self.decisions_due:
            return
        when = self._now() + timedelta(days=self.calendar_rng.randint(*DECISION_AFTER))
        with self.engine.db.reading() as session:
            decide_by = session.scalar(select(EvaluationRound.decide_by).join(
                RoundEntry, RoundEntry.round_id == EvaluationRound.id).where(
                RoundEntry.instance_id == task.instance_id, RoundEntry.left_at.is_(None)))
        if decide_by is not None:
            from demo.sim_years import local_time
            when = min(when, local_time(decide_by, 9))
        when = self._working_hours(when)
        self.decisions_due[key] = when
        self._at(when, "decisions", key)

    def _issue_decisions(self, key: tuple[str, int]) -> None:
        """The People's Committee (or the ministry) of `key`'s lane and area
        issues one numbered decision per round with all the simulation's
        products waiting for it (programme.recognition.issue_decision)."""
        self.decisions_due.pop(key, None)
        role, area_id = key
        authority = AUTHORITY_OF_ROLE[role]
        probe = InboxTask(role=role, jurisdiction_id=area_id, producer_id=None, assignee_id=None)
        try:
            actor = self.driver.actor_for(probe)
        except LookupError:
            return  # nobody holds the authority's role there: its products wait, as they would
        with self.engine.db.reading() as session:
            waiting = waiting_for_decision(session, actor, authority, area_id)
        by_round: dict[int | None, list[int]] = {}
        for item in waiting:
            if item.instance_id in self.instances:
                by_round.setdefault(item.round_id, []).append(item.instance_id)
        today = self._now().astimezone(LOCAL_ZONE).date()
        # Tasks made ready at one moment are listed by their random ids: decided (and their
        # certificates numbered) in instance order, so every run with the seed repeats.
        for round_id, instance_ids in sorted(by_round.items(), key=lambda item: item[0] or 0):
            instance_ids = sorted(instance_ids)
            number = self._next_number(area_id, NUMBER_SUFFIX[authority])
            try:
                issue_decision(self.engine, actor, area_id, authority, number, today, SIGNER[authority],
                               instance_ids, round_id)
            except OcopError:
                # A product no longer waits (a timer ended it): the rest in a later decision.
                retry = self._working_hours(self._now() + timedelta(days=7))
                self.decisions_due[key] = retry
                self._at(retry, "decisions", key)
                break
        self._discover()

    def _next_number(self, area_id: int, suffix: str) -> str:
        with self.engine.db.reading() as session:
            issued = session.scalar(select(func.count()).select_from(Decision).where(Decision.area_id == area_id)) or 0
            while number_taken(session, area_id, f"{issued + 1}/{suffix}"):
                issued += 1
        return f"{issued + 1}/{suffix}"

    # --- re-evaluation ----------------------------------------------------------------------

    def _file_or_not(self, task: InboxTask) -> None:
        """The window is open (or the dossier came back): most producers file,
        their product having drifted a little since it was recognised; the
        others let the certificate expire."""
        instance_id = task.instance_id
        if instance_id in self.reevaluation_asked:  # returned: filed again soon
            days = self.behaviour.rng.uniform(*REFILED_WITHIN)
        else:
            self.reevaluation_asked.add(instance_id)
            if self.behaviour.rng.random() >= FILES_REEVALUATION:
                return
            days = self.behaviour.rng.uniform(*FILED_WITHIN)
            product_id = self.product_of.get(instance_id)
            drifted = self.quality.get(instance_id, 66.0) + self.behaviour.rng.gauss(0.0, QUALITY_DRIFT)
            self.quality[instance_id] = max(20.0, min(97.0, drifted))
            if product_id is not None:
                self.product_quality[product_id] = self.quality[instance_id]
        self._at(self._now() + timedelta(days=days), "complete", task)

    def _opinion(self, task: InboxTask) -> dict:
        """One member's written opinion: near what the council sees of the
        product; in a few re-evaluations one member stands apart."""
        instance_id = task.instance_id
        if instance_id not in self.seen:
            self.seen[instance_id] = self.behaviour.council_quality(self.quality.get(instance_id, 66.0))
            self.diverging[instance_id] = self.behaviour.rng.random() < DIVERGING
        total = self.behaviour.rng.gauss(self.seen[instance_id], self.driver.decider.member_spread)
        if self.diverging.pop(instance_id, False):
            total += DIVERGENCE if total < 80 else -DIVERGENCE
        return {"levels": levels_for_total(self.criteria_set.get(instance_id, "S07"), total)}

    def _on_meeting(self, task: InboxTask) -> None:
        """The opinions diverged: the council meets for this product, its
        members score it again, the chair signs the minutes."""
        instance_id = task.instance_id
        seen = self.seen.get(instance_id) or self.quality.get(instance_id, 66.0)
        sitting = Sitting(task.role.removesuffix("_council"), task.jurisdiction_id, self._now(), self._now())
        if (sitting.level, sitting.area_id) in self.councils:
            hold_sitting(self.engine, self.driver, self.councils, sitting, {instance_id},
                         lambda _i: self.behaviour.council_quality(seen),
                         lambda i: self.criteria_set.get(i, "S07"))
        self._sync()

    # --- upgrades ---------------------------------------------------------------------------

    def _upgrades(self, day: date) -> None:
        """Once a month: certified products improve a little; a few 3-star
        producers whose product grew well into the 4-star band ask for an
        upgrade (programme.certificates.start_upgrade)."""
        if day.day != 1:
            return
        with self.engine.db.reading() as session:
            valid = session.execute(select(Certificate.id, Certificate.product_id, Certificate.stars,
                                           Certificate.issued_on, Certificate.valid_until)
                                    .where(Certificate.status == CERT_VALID,
                                           Certificate.product_id.in_(list(self.product_rows)))
                                    .order_by(Certificate.id)).all()
        rng = self.behaviour.rng
        for certificate_id, product_id, stars, issued_on, valid_until in valid:
            if product_id in self.product_quality:
                mean, spread = GROWTH_PER_MONTH
                self.product_quality[product_id] = min(97.0, self.product_quality[product_id] + rng.gauss(mean, spread))
            if (stars != UPGRADE_FROM_STARS or (day - issued_on).days < UPGRADE_AFTER_DAYS
                    or (valid_until - day).days < WINDOW_OPENS_DAYS + 30 or product_id in self.upgrade_asked
                    or self.product_quality.get(product_id, 0.0) < UPGRADE_TARGET or rng.random() >= UPGRADE_ASKS):
                continue
            self.upgrade_asked.add(product_id)
            try:
                start_upgrade(self.engine, self.owner, certificate_id)
            except (CertificateRefused, OcopError):
                continue
        self._discover()

    # --- inspections and revocations ---------------------------------------------------------

    def _inspections(self, year: int) -> None:
        """Each province's OCOP coordination office plans the year's periodic
        inspections: a share of the simulation's valid certificates there."""
        with self.engine.db.reading() as session:
            valid = session.execute(select(Certificate.id, Certificate.province_id)
                                    .where(Certificate.status == CERT_VALID,
                                           Certificate.product_id.in_(list(self.product_rows)))
                                    .order_by(Certificate.id)).all()
            offices = dict(session.execute(select(RoleAssignment.jurisdiction_id, func.min(RoleAssignment.user_id))
                                           .where(RoleAssignment.role == "province_office")
                                           .group_by(RoleAssignment.jurisdiction_id)).all())
        by_province: dict[int, list[int]] = {}
        for certificate_id, province_id in valid:
            by_province.setdefault(province_id, []).append(certificate_id)
        for province_id, certificate_ids in sorted(by_province.items()):
            if province_id not in offices:
                continue
            chosen = [c for c in certificate_ids if self.calendar_rng.random() < INSPECTED_SHARE]
            if not chosen:
                continue
            office = self.driver.actor_for(InboxTask(role="province_office", jurisdiction_id=province_id,
                                                     producer_id=None, assignee_id=None))
            try:
                plan_inspections(self.engine, office, province_id, year, certificate_ids=chosen)
            except OcopError:
                continue
        self._discover()
        self._sync()

    def _on_revocation_decision(self, task: InboxTask) -> None:
        """The authority for the certificate's stars decides within 15 days
        of the finding: mostly a revocation, numbered; sometimes the
        certificate is kept, with the reason."""
        actor = self.driver.actor_for(task)
        today = self._now().astimezone(LOCAL_ZONE).date()
        authority = "ministry" if task.role == "ministry" else "province"
        try:
            if self.behaviour.rng.random() < REVOKED_SHARE:
                revocations.decide(self.engine, actor, task.id, True,
                                   self._next_number(task.jurisdiction_id, NUMBER_SUFFIX[authority]), today,
                                   SIGNER[authority], "Không duy trì các tiêu chí đã được công nhận.")
            else:
                revocations.decide(self.engine, actor, task.id, False, "", None, "",
                                   "Chủ thể đã khắc phục trong thời hạn, giữ giấy chứng nhận.")
        except OcopError:
            pass  # decided or ended meanwhile
        self._sync()
