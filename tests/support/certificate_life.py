"""A certificate's life walked in tests (helper B1's lifecycle tests): `Life` makes
a certificate row (`make_certificate` here: a cycle instance of an earlier year
when the product already has one, any `valid_until`) and drives its validity,
re-evaluation and upgrade instances as the worker and the people concerned would."""
from __future__ import annotations

import secrets
from datetime import date

from sqlalchemy import func, select

from engine.diagram import PRODUCT_PROCESS
from handlers.promotion import add_months
from storage.areas import area_chain
from storage.models import ProcessDefinition, ProcessInstance, Producer, Product
from storage.recognition_models import CERT_VALID, Certificate, Decision, DecisionItem


def make_certificate(session, product_id: int, stars: int = 3, issued_on: date = date(2023, 6, 1),
                     valid_until: date | None = None, kind: str = "new", status: str = CERT_VALID,
                     previous_id: int | None = None) -> Certificate:
    """A certificate of the product, as if a province decision of
    `issued_on` had recognised it (`valid_until` defaults to 36 months
    later): a completed cycle instance (a row only: no workflow behind it),
    the decision and its item."""
    product = session.get(Product, product_id)
    producer = session.get(Producer, product.producer_id)
    areas = area_chain(session, producer.commune_id)
    definition_id = session.scalar(select(func.min(ProcessDefinition.id)))
    year = issued_on.year  # one cycle a product a year: an earlier year for a second certificate
    while session.scalar(select(ProcessInstance.id).where(ProcessInstance.product_id == product.id,
                                                          ProcessInstance.process_id == PRODUCT_PROCESS,
                                                          ProcessInstance.year == year)) is not None:
        year -= 1
    instance = ProcessInstance(definition_id=definition_id, process_id=PRODUCT_PROCESS, product_id=product.id,
                               jurisdiction_id=producer.commune_id, areas=areas, year=year,
                               status="completed", end_event="end_recognised", stars=stars, state="{}", version=1)
    session.add(instance)
    session.flush()
    number = f"{secrets.randbelow(10**6)}/QĐ-UBND"
    decision = Decision(kind="recognition", authority="ministry" if stars == 5 else "province",
                        area_id=areas["central"] if stars == 5 else areas["province"], number=number,
                        signed_on=issued_on, signer="Nguyễn Văn A, Phó Chủ tịch")
    session.add(decision)
    session.flush()
    certificate = Certificate(
        number=f"OCOP-{secrets.token_hex(4)}", verify_code=secrets.token_urlsafe(16)[:22], product_id=product.id,
        producer_id=producer.id, province_id=areas["province"], commune_id=producer.commune_id,
        group_code=product.group_code, producer_kind=producer.kind, stars=stars, kind=kind,
        instance_id=instance.id, decision_id=decision.id, issued_on=issued_on,
        valid_until=valid_until or add_months(issued_on, 36), status=status, previous_id=previous_id)
    session.add(certificate)
    session.flush()
    session.add(DecisionItem(decision_id=decision.id, instance_id=instance.id, product_id=product.id, stars=stars,
                             outcome="recognised", certificate_id=certificate.id))
    session.flush()
    return certificate


# --- walking a certificate's life (helper B1's tests) -----------------------------------------------

class Life:
    """One product's certificate and the instances of its life, driven as
    the worker and the people concerned would: `fire()` runs the worker's
    timers job at the engine's (fake) clock, `do(form_key, data)` completes
    the instance's ready task of that form as someone allowed to."""

    def __init__(self, engine, product_name: str, **certificate):
        from engine.driver import Driver
        self.engine, self.driver = engine, Driver(engine)
        with engine.db.transaction() as session:
            product = session.scalar(select(Product).where(Product.name == product_name))
            self.product_id, self.group = product.id, product.group_code
            self.certificate_id = make_certificate(session, product.id, **certificate).id
        self.instance_id: int | None = None

    def certificate(self, certificate_id: int | None = None) -> Certificate:
        with self.engine.db.reading() as session:
            return session.get(Certificate, certificate_id or self.certificate_id)

    def start_validity(self, actor) -> list[int]:
        from programme.certificates import start_validity
        started = self.engine.run(lambda session: start_validity(self.engine, session, actor))
        self.instance_id = self.certificate().lifecycle_instance_id
        return started

    def fire(self) -> int:
        from background.timers import fire_due_timers
        return fire_due_timers(self.engine)

    def at(self, moment) -> None:
        """Move the clock to `moment` (a datetime or ISO text) and fire what is due."""
        from datetime import datetime
        self.engine.clock.now = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        self.fire()

    def ready(self, instance_id: int | None = None):
        return self.engine.ready_tasks(instance_id or self.instance_id)

    def forms(self, instance_id: int | None = None) -> list[str]:
        return sorted(task.form_key for task in self.ready(instance_id))

    def task(self, form_key: str, instance_id: int | None = None):
        matches = [t for t in self.ready(instance_id) if t.form_key == form_key]
        assert matches, f"no ready {form_key}; ready: {self.forms(instance_id)}"
        return matches[0]

    def do(self, form_key: str, data: dict, actor=None, instance_id: int | None = None):
        task = self.task(form_key, instance_id)
        return self.engine.complete_task(task.id, data, actor or self.driver.actor_for(task))

    def opinions(self, totals, instance_id: int | None = None) -> None:
        """Each member's sheet, aiming at the totals given (in turn, by member)."""
        from engine.samples import levels_for_total
        totals = totals if isinstance(totals, list) else [totals]
        tasks = sorted((t for t in self.ready(instance_id) if t.form_key == "council_sheet"),
                       key=lambda t: t.assignee_id)
        assert tasks, f"no sheets; ready: {self.forms(instance_id)}"
        for index, task in enumerate(tasks):
            self.engine.complete_task(task.id, {"levels": levels_for_total(self.group, totals[index % len(totals)])},
                                      self.driver.actor_for(task))

    def decide(self, stars: int, actor, outcome: str = "recognised", instance_id: int | None = None,
               signed_on: date = date(2026, 4, 1)):
        """The People's Committee's decision, recorded as A's decision use
        case would: the Decision row, then the task completed with it."""
        task = self.task("recognition_decision", instance_id)
        with self.engine.db.transaction() as session:
            areas = area_chain(session, session.get(Product, self.product_id).producer.commune_id)
            decision = Decision(kind="recognition", authority="province", area_id=areas["province"],
                                number=f"{secrets.randbelow(10**6)}/QĐ-UBND", signed_on=signed_on,
                                signer="Trần Văn B, Chủ tịch")
            session.add(decision)
            session.flush()
            session.add(DecisionItem(decision_id=decision.id, instance_id=task.instance_id,
                                     product_id=self.product_id, stars=stars, outcome=outcome))
            ref = {"id": decision.id, "number": decision.number, "signed_on": signed_on.isoformat(),
                   "signer": decision.signer, "authority": "province"}
        return self.engine.complete_task(task.id, {"decision": ref, "outcome": outcome, "stars": stars}, actor,
                                         from_session=True)

    def instance(self, instance_id: int | None = None) -> ProcessInstance:
        with self.engine.db.reading() as session:
            return session.get(ProcessInstance, instance_id or self.instance_id)

    def notices(self, instance_id: int | None = None) -> list[tuple[str, str]]:
        """(kind, recipient role) of the instance's notifications, oldest first."""
        from storage.models import Notification
        with self.engine.db.reading() as session:
            return [tuple(row) for row in session.execute(
                select(Notification.kind, Notification.recipient_role)
                .where(Notification.instance_id == (instance_id or self.instance_id)).order_by(Notification.id))]


def actor_named(engine, username: str):
    """The Actor of a demo account."""
    from engine.access import load_actor
    from storage.models import User
    with engine.db.reading() as session:
        return load_actor(session, session.scalar(select(User.id).where(User.username == username)))
