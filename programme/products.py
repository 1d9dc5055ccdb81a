"""Producers and their products, for the producers' portal: registering
them (a producer signing itself up, a commune officer registering one),
starting a product's cycle, who may see and manage them, and reading the
product a page names.

Every use case here owns its transaction; where a product stands in its
cycle, and its page, are read in programme/product_status.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import access
from engine.access import Actor
from engine.bpmn_engine import BpmnEngine
from engine.errors import NoActiveDefinition, NotAllowed, OcopError, RegistrationClosed
from engine.execution import Outcome
from programme.accounts import MIN_PASSWORD_LENGTH, USERNAME, create_user
from programme.tasks import prefill_registration
from storage.areas import area_chain
from storage.criteria import sets_by_code
from storage.db import Database
from storage.models import PRODUCER_KINDS, Jurisdiction, Producer, Product, User

NAME_MAX = 200


class InvalidRegistration(ValueError):
    """Form values that cannot be registered: field -> error code (required,
    too_long, unknown_group, unknown_kind, unknown_commune, username_format,
    username_taken, password_short)."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(f"invalid registration: {errors}")


# --- who may see and manage ------------------------------------------------

def may_manage(actor: Actor, producer: Producer) -> bool:
    """engine.access.may_manage_producer, for a producer row."""
    return access.may_manage_producer(actor, producer.id, producer.commune_id)


def may_view(session: Session, actor: Actor, producer: Producer) -> bool:
    """engine.access.may_read_product, for a producer row (its commune's area chain)."""
    return access.may_read_product(actor, producer.id, area_chain(session, producer.commune_id).values())


def readable_product(session: Session, actor: Actor, product_id: int, manage: bool = False) -> Product | None:
    """The product if the actor may read it (with `manage`: manage it), else
    None -- a product outside the actor's reach reads as one that does not
    exist, so pages answer 404 for both."""
    product = session.get(Product, product_id)
    if product is None:
        return None
    allowed = may_manage(actor, product.producer) if manage else may_view(session, actor, product.producer)
    return product if allowed else None


def managed_producers(session: Session, actor: Actor) -> list[Producer]:
    """Producers the actor owns, and those of the communes it is officer of."""
    return list(session.scalars(select(Producer).where(access.managed_producers(actor))
                                .order_by(Producer.name, Producer.id)))


def all_communes(session: Session) -> list[tuple[int, str]]:
    """Every commune as (id, "Xã A – Huyện B – Tỉnh C"), for a producer
    choosing its own when it registers."""
    units = {unit.id: unit for unit in session.scalars(select(Jurisdiction))}
    labels = []
    for unit in units.values():
        if unit.level != "commune":
            continue
        names, parent = [unit.name], units.get(unit.parent_id)
        while parent is not None and parent.level != "central":
            names.append(parent.name)
            parent = units.get(parent.parent_id)
        labels.append((unit.id, " – ".join(names)))
    return sorted(labels, key=lambda item: item[1].split(" – ")[::-1])  # by province, district, commune


def communes_by_id(session: Session, ids) -> dict[int, Jurisdiction]:
    ids = list(set(ids))
    if not ids:
        return {}
    return {unit.id: unit for unit in session.scalars(select(Jurisdiction).where(Jurisdiction.id.in_(ids)))}


# --- registering -----------------------------------------------------------

def product_errors(name: str, group_code: str) -> dict[str, str]:
    """A product's name and criteria set checked: field -> error code."""
    errors = {}
    if not name.strip():
        errors["name"] = "required"
    elif len(name.strip()) > NAME_MAX:
        errors["name"] = "too_long"
    if group_code not in sets_by_code():
        errors["group_code"] = "unknown_group"
    return errors


def _register_product(session: Session, producer: Producer, name: str, group_code: str) -> Product:
    """The product, in the caller's transaction (its name's spaces collapsed)."""
    errors = product_errors(name, group_code)
    if errors:
        raise InvalidRegistration(errors)
    product = Product(producer_id=producer.id, name=" ".join(name.split()), group_code=group_code)
    session.add(product)
    session.flush()
    return product


@dataclass
class RegisteredProducer:
    """A producer just registered: its first product, and its owner's
    account (loaded, for signing the owner in)."""

    product_id: int
    owner: User


def register_producer(db: Database, actor: Actor, commune_id: int, name: str, kind: str, username: str,
                      full_name: str, password: str, product_name: str, group_code: str) -> RegisteredProducer:
    """A commune officer registers a producer of one of their communes
    (engine.access.registering_communes), with its owner account and first
    product -- one transaction. A commune outside the officer's is reported
    as unknown, like one that does not exist."""
    if commune_id not in access.registering_communes(actor):
        commune_id = 0
    with db.transaction() as session:
        return _register_producer(session, commune_id, name, kind, username, full_name, password,
                                  product_name, group_code)


def sign_up(db: Database, commune_id: int, name: str, kind: str, username: str, full_name: str,
            password: str, product_name: str, group_code: str) -> RegisteredProducer:
    """A producer registers itself, in any commune: its owner account, the
    producer and a first product -- one transaction."""
    with db.transaction() as session:
        return _register_producer(session, commune_id, name, kind, username, full_name, password,
                                  product_name, group_code)


def _register_producer(session: Session, commune_id: int, name: str, kind: str, username: str,
                       full_name: str, password: str, product_name: str, group_code: str) -> RegisteredProducer:
    """Every field is checked before anything is written (InvalidRegistration
    names them all), so the caller can show all the errors at once."""
    username = username.strip().lower()
    errors = {}
    commune = session.get(Jurisdiction, commune_id) if commune_id else None
    if commune is None or commune.level != "commune":
        errors["commune_id"] = "unknown_commune"
    if not name.strip():
        errors["name"] = "required"
    elif len(name.strip()) > NAME_MAX:
        errors["name"] = "too_long"
    if kind not in PRODUCER_KINDS:
        errors["kind"] = "unknown_kind"
    if not USERNAME.match(username):
        errors["username"] = "username_format"
    elif session.scalar(select(User.id).where(User.username == username)):
        errors["username"] = "username_taken"
    if not full_name.strip():
        errors["full_name"] = "required"
    elif len(full_name.strip()) > NAME_MAX:
        errors["full_name"] = "too_long"
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = "password_short"
    errors.update({f"product_{key}": code for key, code in product_errors(product_name, group_code).items()})
    if errors:
        raise InvalidRegistration(errors)
    owner = create_user(session, username, full_name, password)
    producer = Producer(name=" ".join(name.split()), kind=kind, commune_id=commune.id, owner_user_id=owner.id)
    session.add(producer)
    session.flush()
    product = _register_product(session, producer, product_name, group_code)
    return RegisteredProducer(product.id, owner)


# --- starting a product's cycle ---------------------------------------------------

# Why a cycle may not start today, though the product is fine: the caller
# says so. The engine raises them before writing anything, so what the same
# transaction wrote before (a new product) can still be committed.
# AlreadyInCycle is raised, not returned: a start that lost a race learns it
# from the database's unique index, which ends the transaction.
START_REFUSALS = (RegistrationClosed, NoActiveDefinition)


@dataclass
class Started:
    """A product registered and/or its cycle started: the cycle's first
    outcome, or why it did not start (one of START_REFUSALS)."""

    product_id: int
    outcome: Outcome | None = None
    refused: OcopError | None = None


def register_and_start(engine: BpmnEngine, actor: Actor, producer_id: int, name: str, group_code: str,
                       registration_form: str) -> Started:
    """Register a product of a producer the actor manages and start its
    cycle for this year, its idea registration form pre-filled with the
    registration form chosen (01 new, 02 existing product) -- one
    transaction. When the cycle cannot start today (registration closed, no
    active diagram), the product stays registered and `refused` says why:
    the engine refuses before it writes anything."""
    def work(session: Session) -> Started:
        producer = session.get(Producer, producer_id)
        if producer is None or not may_manage(actor, producer):
            raise NotAllowed("only the producer or its commune officer may register its products")
        product = _register_product(session, producer, name, group_code)
        return _start(engine, session, actor, product.id, registration_form)
    return engine.run(work)


def start_cycle(engine: BpmnEngine, actor: Actor, product_id: int, registration_form: str) -> Started:
    """Start a registered product's cycle for this year, its idea
    registration form pre-filled -- one transaction. Raises NotAllowed when
    the actor may not manage the product; a refusal of the start itself is
    in `refused`; AlreadyInCycle is raised."""
    return engine.run(lambda session: _start(engine, session, actor, product_id, registration_form))


def _start(engine: BpmnEngine, session: Session, actor: Actor, product_id: int,
           registration_form: str) -> Started:
    try:
        outcome = engine.start_product(product_id, actor, unit=session)
    except START_REFUSALS as refused:
        return Started(product_id, refused=refused)
    prefill_registration(session, outcome.instance_id, registration_form, engine.clock())
    return Started(product_id, outcome)
