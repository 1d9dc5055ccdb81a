"""Whole numbers in query strings (web/context.py query_int), app-wide and
on both databases: every GET page is sent each numeric parameter any page
reads, with values no column holds (past 32 and 64 bits, negative, not
digits). Nothing answers 500; the pages that read the parameter answer 400
saying which value and what it should be."""
from __future__ import annotations

import pytest

from testkit.web_login import login

# Every integer query parameter a page reads (grep query_int in web/).
NUMBERS = ("stars", "province", "year", "step", "page", "commune", "definition", "from", "a", "b")
BAD = ("9223372036854775808", "2147483648", "-1", "0", "abc", "²", "1e3", "99999999999999999999999999999")

# (path, parameter) that read the parameter: these must answer 400.
READERS = [
    ("/catalogue", "province"), ("/catalogue", "stars"),
    ("/dashboard/", "province"), ("/dashboard/", "year"),
    ("/inbox/", "step"), ("/inbox/", "commune"),
    ("/audit/", "step"), ("/audit/", "page"),
    ("/notifications/", "page"),
    ("/modeler/", "definition"),
    ("/definitions/compare", "b"),
]


def _get_routes(app) -> list[str]:
    """Every GET route of the app without path arguments (those with ids
    are checked by the id tests), except static files and sign-out."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments and not rule.endpoint.endswith("static") \
                and rule.endpoint not in ("auth.logout",):
            paths.append(rule.rule)
    return sorted(set(paths))


@pytest.mark.parametrize("who", ["admin", "qlct.qt"])
def test_no_query_number_answers_500(world, client, app, who):
    login(client, who)
    routes = _get_routes(app)
    assert "/catalogue" in routes and "/inbox/" in routes
    for path in routes:
        for name in NUMBERS:
            for value in BAD:
                response = client.get(path, query_string={name: value})
                assert response.status_code != 500, (path, name, value)
                assert response.status_code in (200, 302, 400, 403, 404, 405, 422), (path, name, value)


def test_pages_that_read_a_number_refuse_one_out_of_range(world, client):
    login(client, "admin")
    for path, name in READERS:
        for value in ("9223372036854775808", "2147483648", "-1", "x"):
            response = client.get(path, query_string={name: value})
            assert response.status_code == 400, (path, name, value)
            text = response.get_data(as_text=True)
            assert f"Tham số “{name}” trong địa chỉ phải là số nguyên từ" in text, (path, name)
            assert f"The parameter “{name}” in the address must be a whole number" in text


def test_empty_values_and_numbers_in_range_still_filter(world, client):
    """A form's "all" choice sends an empty value: no filter, not an error."""
    for query in ("province=", "stars=", "province=1", "stars=4", "province=2147483647"):
        assert client.get(f"/catalogue?{query}").status_code == 200, query
    login(client, "admin")
    assert client.get("/dashboard/?province=&year=").status_code == 200


def test_the_api_refuses_them_in_its_own_format(world, client):
    login(client, "cb.qt-gl")
    for query in ("page=9223372036854775808", "commune_id=2147483648", "step=-1", "page=x"):
        response = client.get(f"/api/v1/tasks?{query}")
        assert response.status_code == 422, query
        assert response.get_json()["error"]["code"] == "invalid"
