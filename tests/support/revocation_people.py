"""The people of the revocation and inspection tests (tests/test_revocation.py,
tests/test_inspection.py, tests/test_web_revocations.py): the province's
OCOP coordination office, the People's Committees of Quảng Trị and Lào Cai,
the ministry; and a certificate of a demo product."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from engine.access import Actor, load_actor
from programme.accounts import create_user, hash_password
from storage.models import Jurisdiction, Product, User
from tests.support.certificates import make_certificate

# username, role, area code
PEOPLE = {"office": ("vp.qt", "province_office", "QT"), "committee": ("ubnd.qt", "province_committee", "QT"),
          "committee_lc": ("ubnd.lc", "province_committee", "LC"), "ministry": ("bo.nnmt", "ministry", "VN")}


def area(session, code: str) -> int:
    return session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == code))


def person(engine, username: str, role: str, code: str, password: str | None = None) -> Actor:
    """An account holding `role` for the area `code`, as an Actor: the
    sandbox's own when it has one by that name (`password`: to sign in on
    the web pages; set on either)."""
    with engine.db.transaction() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = create_user(session, username, f"Người {username}", password, roles=[(role, area(session, code))])
        else:
            assert (role, area(session, code)) in {(r.role, r.jurisdiction_id) for r in user.roles}, username
            if password is not None:
                user.password_hash = hash_password(password)
        return load_actor(session, user.id)


def people_of(engine, password: str | None = None) -> dict[str, Actor]:
    return {key: person(engine, *who, password=password) for key, who in PEOPLE.items()}


def certificate_of(engine, product_name: str, stars: int = 3, instance_id: int | None = None) -> int:
    """A valid certificate of the demo product, issued on 15/1/2026."""
    with engine.db.transaction() as session:
        product_id = session.scalar(select(Product.id).where(Product.name == product_name))
        return make_certificate(session, product_id, stars=stars, issued_on=date(2026, 1, 15),
                                instance_id=instance_id).id
