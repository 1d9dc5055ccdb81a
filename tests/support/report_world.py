"""A varied set of certificates for the report's tests (tests/test_reports.py,
tests/test_web_reports.py): three provinces (Quảng Trị and Lào Cai of the
demo, and Hà Giang added here), every producer kind, stars 3-5, the three
ways a certificate is issued, valid / expired / revoked / replaced, a few
still marked valid past their date, issued over four years in the
provinces' and the ministry's rounds or in none; and figures counted
straight from the database with SQL written here, not the report's."""
from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import Date, bindparam, select, text

from storage.models import Jurisdiction, Producer, Product
from tests.support.report_certificates import make_certificate, make_round

ON = date(2026, 3, 2)  # the tests' clock (tests/conftest.py FakeClock)
KINDS = ("cooperative", "cooperative_group", "enterprise", "household", "farm")


def add_province(session) -> int:
    """Hà Giang, one commune, one producer of each kind with two products."""
    vn = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "VN"))
    province = Jurisdiction(code="HG", name="Tỉnh Hà Giang", level="province", parent_id=vn)
    session.add(province)
    session.flush()
    commune = Jurisdiction(code="HG-DV", name="Xã Đồng Văn", level="commune", parent_id=province.id)
    session.add(commune)
    session.flush()
    for number, kind in enumerate(KINDS):
        producer = Producer(name=f"Chủ thể Đồng Văn {number + 1}", kind=kind, commune_id=commune.id)
        session.add(producer)
        session.flush()
        for group in ("S11", "S21"):
            session.add(Product(producer_id=producer.id, name=f"Sản phẩm Đồng Văn {number + 1} {group}",
                                group_code=group))
    session.flush()
    return province.id


def build(world, count: int = 90, seed: int = 16) -> dict[str, int]:
    """`count` certificates spread at random (seeded); the province ids by code."""
    rng = random.Random(seed)
    with world.db.transaction() as session:
        add_province(session)
        provinces = dict(session.execute(select(Jurisdiction.code, Jurisdiction.id)
                                         .where(Jurisdiction.level == "province")).all())
        products = session.execute(select(Product.id, Producer.commune_id).join(Producer)).all()
        central = [make_round(session, None, year, number).id for year in (2025, 2026) for number in (1, 2)]
        rounds = {}
        for code, province in provinces.items():
            rounds[province] = [make_round(session, province, year, number).id
                                for year in (2024, 2025, 2026) for number in (1, 2)]
        chains = {}
        for _ in range(count):
            product_id, commune_id = rng.choice(products)
            province = chains.get(commune_id) or _province_of(session, commune_id)
            chains[commune_id] = province
            stars = rng.choices((3, 4, 5), (70, 27, 3))[0]
            issued_on = date(2023, 1, 1) + timedelta(days=rng.randrange(0, (ON - date(2023, 1, 1)).days + 200))
            status = rng.choices(("valid", "expired", "revoked", "replaced"), (60, 15, 10, 15))[0]
            kind = rng.choices(("new", "re_recognised", "upgraded"), (60, 30, 10))[0]
            round_id = rng.choice(rounds[province] + central + [None, None])
            extra = {}
            if status == "revoked":
                extra["status_changed_on"] = issued_on + timedelta(days=rng.randrange(10, 500))
                extra["revocation_round_id"] = rng.choice([None, rng.choice(rounds[province])])
            if status == "valid" and rng.random() < 0.1:  # past its date, the expiry job not run yet
                extra["valid_until"] = ON - timedelta(days=rng.randrange(1, 60))
            if status == "valid" and rng.random() < 0.15:  # expiring soon
                extra["valid_until"] = ON + timedelta(days=rng.randrange(0, 200))
            make_certificate(session, product_id, stars, issued_on, status, kind, round_id=round_id, **extra)
    return provinces


def _province_of(session, commune_id: int) -> int:
    area = session.get(Jurisdiction, commune_id)
    while area.level != "province":
        area = session.get(Jurisdiction, area.parent_id)
    return area.id


# --- counted straight from the database ---------------------------------------------

VALID = ("c.issued_on <= :on AND c.valid_until >= :on "
         "AND (c.status = 'valid' OR c.status_changed_on > :on)")
EXPIRED = ("c.valid_until < :on AND (c.status = 'expired' OR (c.status = 'valid' AND NOT EXISTS "
           "(SELECT 1 FROM certificate s WHERE s.previous_id = c.id AND s.issued_on <= :on)))")


def year_of(world, column: str) -> str:
    if world.db.sql_engine.dialect.name == "sqlite":
        return f"CAST(strftime('%Y', {column}) AS INTEGER)"
    return f"CAST(EXTRACT(YEAR FROM {column}) AS INTEGER)"


def counted(world, sql: str, on: date = ON, provinces=None, **params) -> dict:
    """{key: count} from `SELECT key..., count(*) ... {scope}` rows: the
    last column is the count, the others the key (one column: its value)."""
    scope = "" if provinces is None else f" AND c.province_id IN ({', '.join(str(int(p)) for p in provinces)})"
    statement = text(sql.replace("{scope}", scope).replace("{valid}", VALID).replace("{expired}", EXPIRED))
    statement = statement.bindparams(bindparam("on", type_=Date), *[
        bindparam(name, type_=Date) for name, value in params.items() if isinstance(value, date)])
    with world.db.transaction() as session:
        rows = session.execute(statement, {"on": on, **params}).all()
    return {(row[0] if len(row) == 2 else tuple(row[:-1])): row[-1] for row in rows}
