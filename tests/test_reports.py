"""The OCOP report's figures (programme/reports.py) on SQLite and
PostgreSQL: every figure of a varied set of certificates equals a count
taken straight from the database with SQL written in the test
(tests/support/report_world.py), for the nation, one province and a past
date; who reports on which province; an empty database."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from engine.access import ReportScope, load_actor, report_scope_of
from engine.errors import NotAllowed
from handlers.promotion import add_months
from programme import reports
from programme.reports import ReportAudience, ReportFilters
from storage.criteria import sets_by_code
from storage.models import User
from storage.recognition_models import Certificate
from tests.support.report_certificates import make_certificate
from tests.support.report_world import ON, build, counted, year_of


def figures(world, on=ON, year=None, provinces=None, limit=None):
    scope = ReportScope(everything=True) if provinces is None else ReportScope(province_ids=frozenset(provinces))
    with world.db.transaction() as session:
        return reports.report(session, ReportFilters(on, year or on.year, scope), limit=limit)


def actor(world, username):
    with world.db.transaction() as session:
        return load_actor(session, session.scalar(select(User.id).where(User.username == username)))


def nonzero(counts: dict) -> dict:
    return {key: value for key, value in counts.items() if value}


@pytest.fixture
def provinces(world):
    return build(world)


def check_report(world, on, year, provinces=None):
    """Every figure of the report against the database's own counts."""
    result = figures(world, on, year, provinces)
    sql = "SELECT c.{col}, count(*) FROM certificate c WHERE {valid}{scope} GROUP BY c.{col}"
    stock_by = {col: counted(world, sql.replace("{col}", col), on, provinces)
                for col in ("stars", "group_code", "producer_kind", "province_id")}
    assert nonzero(result.stock.by_stars) == stock_by["stars"]
    assert nonzero(result.stock.by_set) == stock_by["group_code"]
    assert nonzero(result.stock.by_kind) == stock_by["producer_kind"]
    assert result.stock.total == sum(stock_by["stars"].values())
    industry = reports.set_industries()
    by_industry = {}
    for code, count in stock_by["group_code"].items():
        by_industry[industry[code]] = by_industry.get(industry[code], 0) + count
    assert nonzero(result.stock.by_industry) == by_industry
    assert list(result.stock.by_industry) == ["I", "II", "III", "IV", "V", "VI"]

    issued_year = year_of(world, "c.issued_on")
    issued = counted(world, f"SELECT {issued_year}, c.kind, count(*) FROM certificate c "
                            "WHERE c.issued_on <= :on{scope} GROUP BY 1, 2", on, provinces)
    revoked = counted(world, f"SELECT {year_of(world, 'c.status_changed_on')}, count(*) FROM certificate c "
                             "WHERE c.status = 'revoked' AND c.status_changed_on <= :on{scope} GROUP BY 1",
                      on, provinces)
    expired = counted(world, f"SELECT {year_of(world, 'c.valid_until')}, count(*) FROM certificate c "
                             "WHERE {expired}{scope} GROUP BY 1", on, provinces)
    expected_years = {}
    for (year_, kind), count in issued.items():
        expected_years.setdefault(year_, {})[kind] = count
    for year_, count in revoked.items():
        expected_years.setdefault(year_, {})["revoked"] = count
    for year_, count in expired.items():
        expected_years.setdefault(year_, {})["expired"] = count
    assert {row.year: nonzero(row.counts) for row in result.years} == expected_years
    assert [row.year for row in result.years] == sorted(expected_years, reverse=True)

    by_round = counted(world, "SELECT d.round_id, c.kind, count(*) FROM certificate c "
                              "JOIN recognition_decision d ON d.id = c.decision_id "
                              "JOIN evaluation_round r ON r.id = d.round_id "
                              f"WHERE c.issued_on <= :on AND r.year = {int(year)}{{scope}} GROUP BY 1, 2",
                       on, provinces)
    revoked_by_round = counted(world, "SELECT d.round_id, count(*) FROM certificate c "
                                      "JOIN recognition_decision d ON d.id = c.revocation_decision_id "
                                      "JOIN evaluation_round r ON r.id = d.round_id "
                                      "WHERE c.status = 'revoked' AND c.status_changed_on <= :on "
                                      f"AND r.year = {int(year)}{{scope}} GROUP BY 1", on, provinces)
    expected_rounds = {}
    for (round_id, kind), count in by_round.items():
        expected_rounds.setdefault(round_id, {})[kind] = count
    for round_id, count in revoked_by_round.items():
        expected_rounds.setdefault(round_id, {})["revoked"] = count
    assert {row.round_id: nonzero(row.counts) for row in result.rounds} == expected_rounds
    assert all(row.year == year for row in result.rounds)
    no_round = counted(world, f"SELECT c.kind, count(*) FROM certificate c "
                              "JOIN recognition_decision d ON d.id = c.decision_id "
                              f"WHERE c.issued_on <= :on AND d.round_id IS NULL AND {issued_year} = {int(year)}"
                              "{scope} GROUP BY 1", on, provinces)
    assert {k: v for k, v in nonzero(result.rounds_unassigned).items() if k != "revoked"} == no_round

    until = add_months(on, 6)
    months = counted(world, f"SELECT {year_of(world, 'c.valid_until')}, "
                            + year_of(world, "c.valid_until").replace("'%Y'", "'%m'").replace("YEAR", "MONTH")
                            + ", count(*) FROM certificate c WHERE {valid} AND c.valid_until <= :until{scope} "
                              "GROUP BY 1, 2", on, provinces, until=until)
    assert {(y, m): n for y, m, n in result.expiring.by_month} == months
    assert result.expiring.total == len(result.expiring.certificates) == sum(months.values())
    listed = counted(world, "SELECT c.number, count(*) FROM certificate c WHERE {valid} "
                            "AND c.valid_until <= :until{scope} GROUP BY 1", on, provinces, until=until)
    assert {row.number for row in result.expiring.certificates} == set(listed)
    assert [row.valid_until for row in result.expiring.certificates] == \
        sorted(row.valid_until for row in result.expiring.certificates)

    stock_by_province_stars = counted(world, "SELECT c.province_id, c.stars, count(*) FROM certificate c "
                                             "WHERE {valid}{scope} GROUP BY 1, 2", on, provinces)
    issued_in_year = counted(world, f"SELECT c.province_id, c.kind, count(*) FROM certificate c "
                                    f"WHERE c.issued_on <= :on AND {issued_year} = {int(year)}{{scope}} "
                                    "GROUP BY 1, 2", on, provinces)
    for row in result.provinces:
        assert nonzero(row.stock) == {stars: n for (p, stars), n in stock_by_province_stars.items()
                                      if p == row.province_id}
        assert {k: v for k, v in nonzero(row.movements).items() if k in ("new", "re_recognised", "upgraded")} \
            == {kind: n for (p, kind), n in issued_in_year.items() if p == row.province_id}
        assert row.total == stock_by["province_id"].get(row.province_id, 0)
    return result


def test_the_nations_figures_equal_the_databases_counts(world, provinces):
    result = check_report(world, ON, ON.year)
    assert [row.code for row in result.provinces] == ["HG", "LC", "QT"]   # every province, by name
    assert result.stock.total > 20 and result.expiring.total > 0 and result.rounds
    assert sum(row.counts["expired"] for row in result.years) > 0
    assert sum(row.counts["revoked"] for row in result.years) > 0


def test_one_provinces_figures_and_other_years(world, provinces):
    result = check_report(world, ON, 2025, [provinces["QT"]])
    assert [row.code for row in result.provinces] == ["QT"]
    assert all(row.province in (None, "Tỉnh Quảng Trị") for row in result.rounds)
    check_report(world, date(2025, 6, 30), 2025)              # a past date: what was valid then
    check_report(world, date(2024, 12, 31), 2024, [provinces["LC"], provinces["HG"]])


def test_the_statuses_count_where_they_belong(world):
    """A hand-made set: one certificate of each case and where it counts."""
    with world.db.transaction() as session:
        product = session.scalar(select(Certificate.id).limit(1))  # none yet
        assert product is None
        from storage.models import Product
        product = session.scalar(select(Product.id).where(Product.name == "Hồ tiêu Gio Linh"))
        valid = make_certificate(session, product, 4, date(2025, 5, 1))
        make_certificate(session, product, 3, date(2022, 1, 10), "expired")
        make_certificate(session, product, 3, date(2023, 2, 1), "valid", valid_until=date(2026, 2, 1))  # job late
        make_certificate(session, product, 5, date(2024, 6, 1), "revoked", status_changed_on=date(2025, 8, 1))
        old = make_certificate(session, product, 3, date(2023, 6, 1), "replaced", status_changed_on=date(2025, 5, 1))
        make_certificate(session, product, 4, date(2025, 5, 1), "valid", "upgraded", previous_id=old.id,
                         valid_until=date(2026, 6, 30))
        valid_number = valid.number
    result = figures(world)
    assert result.stock.by_stars == {3: 0, 4: 2, 5: 0} and result.stock.total == 2
    assert result.stock.by_kind["cooperative"] == 2 and result.stock.by_set["S10"] == 2
    years = {row.year: nonzero(row.counts) for row in result.years}
    assert years == {2026: {"expired": 1}, 2025: {"new": 1, "upgraded": 1, "revoked": 1, "expired": 1},
                     2024: {"new": 1}, 2023: {"new": 2}, 2022: {"new": 1}}
    assert [(row.valid_until, row.stars) for row in result.expiring.certificates] == [(date(2026, 6, 30), 4)]
    assert result.expiring.by_month == [(2026, 6, 1)]
    # A year earlier the revoked and the replaced certificates were valid, and the late one.
    earlier = figures(world, date(2025, 3, 1))
    assert earlier.stock.by_stars == {3: 2, 4: 0, 5: 1} and valid_number not in \
        {row.number for row in earlier.expiring.certificates}


def test_an_empty_database_reports_zeros(world):
    result = figures(world)
    assert result.stock.total == 0 and result.years == [] and result.rounds == []
    assert result.expiring.total == 0 and result.expiring.by_month == []
    assert [row.total for row in result.provinces] == [0, 0]
    assert set(result.stock.by_set) == set(sets_by_code())


def test_who_reports_on_which_province(world, provinces):
    qt, lc = provinces["QT"], provinces["LC"]
    # ubnd.qt (Quảng Trị's People's Committee) and bo.nnmt (the ministry) are the sandbox's own.
    on = ON
    for username in ("admin", "kiemtoan", "bo.nnmt"):
        audience = ReportAudience.of(actor(world, username))
        assert audience.national and audience.filters(on, 2026).provinces is None
        assert audience.filters(on, 2026, lc).provinces == (lc,)
    for username in ("qlct.qt", "ubnd.qt"):
        audience = ReportAudience.of(actor(world, username))
        assert not audience.national and audience.filters(on, 2026).provinces == (qt,)
        with pytest.raises(NotAllowed):
            audience.filters(on, 2026, lc)
    for username in ("cb.qt-gl", "htx.giomy", "hd.qt", "tutvan.qt"):
        audience = ReportAudience.of(actor(world, username))
        assert not audience.may_view
        with pytest.raises(NotAllowed):
            audience.filters(on, 2026)
    # The predicate and its SQL agree, certificate by certificate.
    with world.db.transaction() as session:
        rows = session.execute(select(Certificate.id, Certificate.province_id)).all()
        for username in ("admin", "qlct.qt", "ubnd.qt", "cb.qt-gl", "qlct.lc"):
            scope = report_scope_of(load_actor(session, session.scalar(
                select(User.id).where(User.username == username))))
            selected = set(session.scalars(select(Certificate.id).where(scope.certificates())))
            assert selected == {row.id for row in rows if scope.covers(row.province_id)}, username


def test_the_statements_do_not_grow_with_the_data(world, provinces):
    from sqlalchemy import event
    statements = []

    def count(*args):
        statements.append(args[2])

    def run():
        statements.clear()
        event.listen(world.db.sql_engine, "before_cursor_execute", count)
        try:
            figures(world, limit=None)
        finally:
            event.remove(world.db.sql_engine, "before_cursor_execute", count)
        return len(statements)

    before = run()
    with world.db.transaction() as session:
        product = session.scalar(select(Certificate.product_id).limit(1))
        for number in range(40):
            make_certificate(session, product, 3 + number % 3, date(2024, 1 + number % 12, 1))
    assert run() == before <= 10
