"""The JSON API under hostile input, checked against its own contract
(/api/v1/openapi.json): never a 5xx, only documented status codes, JSON
bodies that fit the documented schemas, invalid requests refused.

- `test_generated_requests`: schemathesis generates requests for every
  operation of the document, valid ones and invalid ones (wrong types,
  missing and extra fields, out-of-range numbers, odd strings); about half
  of them carry real task, instance, product and token ids in their path,
  so the generated bodies and queries reach the engine, not just a 404.
- `test_hostile_values_in_every_parameter`: a fixed list of values known
  to break things (ids past the database's integer range, NUL and control
  characters, very long strings, path tricks) in every path and query
  parameter.
- `test_hostile_bodies`: request bodies that are not JSON objects, JSON
  nested 100 000 deep, NaN and infinity, NUL characters and unpaired
  surrogates, form fields of the wrong type; rejected ones change nothing.

Each runs as a district officer and as a producer (Bearer tokens), on
SQLite and PostgreSQL, on a world where both have tasks waiting; at the
end every instance's audit chain must still verify, and replay.

Hostile input to the HTML forms is in test_fuzz_forms.py, hostile
diagrams in test_fuzz_bpmn.py.

(schemathesis' own pytest integration for fixtures, `from_fixture`, does
not run on pytest 9.2, so the cases are drawn from each operation's
hypothesis strategy here.)
"""
from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from audit.verification import verify
from programme.tokens import issue_token
from storage.models import ApiToken, AuditEvent, InboxTask, ProcessInstance, Product, User
from testkit.cycle import VALID, Cycle
from testkit.web_login import login

OPENAPI = "/api/v1/openapi.json"
CONTRACT = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PEPPER, HONEY, FISH = "Hồ tiêu Gio Linh", "Mật ong rừng Gio Sơn", "Cá khô Trung Giang"
USERS = ["cb.qt-gl", "htx.giomy"]  # the Gio Linh district officer, the pepper's producer
# Cases per operation: enough for every parameter to see odd values, few
# enough for the whole file to run in about a minute on two cores.
EXAMPLES = 25
FUZZING = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                          HealthCheck.filter_too_much, HealthCheck.data_too_large])


# --- the world: work waiting for both callers ------------------------------------------------

class Caller:
    """A Bearer token of `username`, and real ids to put in paths."""

    def __init__(self, world, app, username: str):
        self.world, self.app = world, app
        self.token_id, secret = _token(world, username, "fuzzing")
        self.headers = {"Authorization": f"Bearer {secret}"}
        spare_id, _ = _token(world, username, "spare")  # fair game for DELETE /tokens/{token_id}
        others_id, _ = _token(world, "cb.qt-cl", "someone else's")
        self.pinned = {"task_id": _ids(world, InboxTask.id), "instance_id": _ids(world, ProcessInstance.id),
                       "product_id": _ids(world, Product.id)[:5], "token_id": [str(spare_id), str(others_id)]}
        self.schema = schemathesis.openapi.from_wsgi(OPENAPI, app)
        self.operations = [result.ok() for result in self.schema.get_all_operations()]

    def still_signed_in(self) -> bool:
        with self.world.db.transaction() as session:
            return session.get(ApiToken, self.token_id).revoked_at is None


def _token(world, username: str, name: str) -> tuple[int, str]:
    with world.db.transaction() as session:
        user_id = session.scalar(select(User.id).where(User.username == username))
        row, secret = issue_token(session, user_id, name, world.clock())
        return row.id, secret


def _ids(world, column) -> list[str]:
    with world.db.transaction() as session:
        return [str(value) for value in session.scalars(select(column).order_by(column))]


@pytest.fixture
def work(world):
    """The pepper's idea and the honey's plan wait for the Gio Linh district
    officer, the fish's idea for its own producer (someone else); the rice
    is not started, so its owner may start it."""
    pepper = Cycle(world, PEPPER).start()
    pepper.do("register_idea")
    pepper.do("receive_idea")
    honey = Cycle(world, HONEY).start()
    for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan"):
        honey.do(form_key)
    fish = Cycle(world, FISH).start()
    return {"pepper": pepper, "honey": honey, "fish": fish}


def _record_is_intact(world) -> None:
    report = verify(world)  # every instance: its hash chain, and a replay of its events
    assert report.instances >= 3 and report.ok, report.problems


def _documented(operation, response) -> None:
    """The answer is one the document promises, in JSON, never a 5xx."""
    assert response.status_code < 500, (operation.label, response.status_code, response.get_data(as_text=True))
    assert str(response.status_code) in operation.responses.status_codes, (operation.label, response.status_code)
    assert response.mimetype == "application/json", (operation.label, response.mimetype)
    body = response.get_json()
    if response.status_code >= 400:
        assert body["error"]["code"] and body["error"]["message"], body
    assert "Traceback" not in response.get_data(as_text=True)


# --- generated requests ------------------------------------------------------------------------

def _strategy(operation, caller: Caller) -> st.SearchStrategy:
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    parts = [operation.as_strategy(generation_mode=mode) for mode in modes]
    for parameter in operation.path_parameters:
        for value in caller.pinned.get(parameter.name, []):
            parts += [operation.as_strategy(generation_mode=mode, path_parameters={parameter.name: value})
                      for mode in modes]
    strategy = st.one_of(parts)
    if any(parameter.name == "token_id" for parameter in operation.path_parameters):
        # Revoking the token in use would turn every later answer into a 401.
        strategy = strategy.filter(lambda case: str(case.path_parameters.get("token_id")) != str(caller.token_id))
    return strategy


@pytest.mark.parametrize("username", USERS)
def test_generated_requests(world, app, work, username):
    caller = Caller(world, app, username)
    fuzzed = []
    for operation in caller.operations:
        @FUZZING
        @given(case=_strategy(operation, caller))
        def run(case):
            negative = case.meta is not None and case.meta.generation.mode.is_negative
            case.call_and_validate(headers=caller.headers,
                                   checks=CONTRACT + ([negative_data_rejection] if negative else []))

        run()
        assert caller.still_signed_in(), operation.label
        fuzzed.append(operation.label)
    assert len(fuzzed) == 12 and len(set(fuzzed)) == 12, fuzzed  # every operation but the public document
    _record_is_intact(world)


# --- hostile values in paths and queries ---------------------------------------------------------

HOSTILE = [
    "0", "-1", "2147483648", "9223372036854775808", "9" * 40, "1e309", "NaN", "1.5", "0x10", "",
    " ", "\x00", "a\x00b", "\x1b[31m", "\u202e", "x" * 5000, "../../../etc/passwd", "%00", "%2e%2e%2f",
    "' OR 1=1 --", "<script>alert(1)</script>", "true", "[]", "null", "💥" * 100,
]


@pytest.mark.parametrize("username", USERS)
def test_hostile_values_in_every_parameter(world, app, work, username):
    caller = Caller(world, app, username)
    sent = 0
    for operation in caller.operations:
        parameters = [(p.name, "path") for p in operation.path_parameters]
        parameters += [(p.name, "query") for p in operation.query]
        for name, where in parameters:
            for value in HOSTILE:
                if name == "token_id" and value == str(caller.token_id):
                    continue
                if where == "path" and "/" in value:
                    continue  # the client resolves ../ before sending: the request leaves /api/v1
                case = operation.Case(path_parameters={p.name: caller.pinned.get(p.name, ["1"])[0]
                                                       for p in operation.path_parameters},
                                      body={} if operation.body else schemathesis.core.NOT_SET)
                if where == "path":
                    case.path_parameters[name] = value
                else:
                    case.query = {name: value}
                case.call_and_validate(headers=caller.headers, checks=CONTRACT)
                sent += 1
    assert sent > 300 and caller.still_signed_in()
    _record_is_intact(world)


# --- hostile bodies --------------------------------------------------------------------------------

RAW_BODIES = [
    b"", b"null", b"[]", b"1", b'"text"', b"{", b"{'single': 'quotes'}", b"\xff\xfe\x00{",
    b"[" * 100_000 + b"]" * 100_000,                          # nested past Python's recursion limit
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"decision": NaN}', b'{"year": Infinity}', b'{"year": 1e400}', b'{"year": ' + b"9" * 5000 + b"}",
    b'{"decision": "\\ud800"}', b'{"\\u0000": 1}', b'{"decision": "accept", "decision": "return"}',
    json.dumps({"x" * 100_000: 1}).encode(),
]


def _instance_state(world, instance_id: int) -> tuple[int, int]:
    with world.db.transaction() as session:
        version = session.get(ProcessInstance, instance_id).version
        events = session.scalar(select(func.count()).select_from(AuditEvent)
                                .where(AuditEvent.instance_id == instance_id))
    return version, events


def _body_fields(form_key: str) -> list[tuple[str, object]]:
    """(field, value) pairs no form may accept in place of its field's value."""
    pairs = []
    for name in VALID[form_key]:
        for value in ("bad\x00value", "\ud800 unpaired", "\x07\x08 control", "x" * 100_001, ["a", "list"],
                      {"a": "dict"}, None, float("nan"), float("inf"), -1, 10 ** 400, True):
            pairs.append((name, value))
    return pairs


@pytest.mark.parametrize("username", USERS)
def test_hostile_bodies(world, app, work, username):
    caller = Caller(world, app, username)
    client = app.test_client(use_cookies=False)
    by_label = {operation.label: operation for operation in caller.operations}
    cycle = work["pepper"] if username == "cb.qt-gl" else work["fish"]
    form_key = "review_idea" if username == "cb.qt-gl" else "register_idea"
    task_id = cycle.task(form_key).id
    if username == "htx.giomy":  # the producer's own task: the rice's idea
        cycle = Cycle(world, "Gạo hữu cơ Gio Mỹ").start()
        task_id = cycle.task(form_key).id
    before = _instance_state(world, cycle.instance_id)
    targets = [("POST /api/v1/tasks/{task_id}/complete", f"/api/v1/tasks/{task_id}/complete"),
               ("POST /api/v1/products/{product_id}/start", f"/api/v1/products/{caller.pinned['product_id'][1]}/start"),
               ("POST /api/v1/tokens", "/api/v1/tokens")]
    for label, path in targets:
        for raw in RAW_BODIES:
            response = client.post(path, data=raw, headers={**caller.headers, "Content-Type": "application/json"})
            _documented(by_label[label], response)
    assert _instance_state(world, cycle.instance_id) == before

    # The task's own form with one field replaced: refused, with the field
    # named, and nothing written.
    complete = by_label["POST /api/v1/tasks/{task_id}/complete"]
    for name, value in _body_fields(form_key):
        body = {**VALID[form_key], name: value}
        raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
        response = client.post(f"/api/v1/tasks/{task_id}/complete", data=raw,
                               headers={**caller.headers, "Content-Type": "application/json"})
        _documented(complete, response)
        assert response.status_code == 422, (name, repr(value)[:60], response.get_json())
        named = response.get_json()["error"]["fields"]
        assert name in named or "_schema" in named, named
    assert _instance_state(world, cycle.instance_id) == before
    assert caller.still_signed_in()
    _record_is_intact(world)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_body_over_the_size_limit_is_a_documented_413(world, app, work):
    caller = Caller(world, app, "cb.qt-gl")
    by_label = {operation.label: operation for operation in caller.operations}
    huge = b'{"reasons": "' + b"x" * app.config["MAX_CONTENT_LENGTH"] + b'"}'
    task_id = work["pepper"].task("review_idea").id
    product_id = caller.pinned["product_id"][1]
    for label, path in [("POST /api/v1/tasks/{task_id}/complete", f"/api/v1/tasks/{task_id}/complete"),
                        ("POST /api/v1/products/{product_id}/start", f"/api/v1/products/{product_id}/start")]:
        response = app.test_client(use_cookies=False).post(
            path, data=huge, headers={**caller.headers, "Content-Type": "application/json"})
        assert response.status_code == 413, label
        _documented(by_label[label], response)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # where a NUL in a name broke the insert
def test_hostile_token_names_from_a_session(world, app):
    """Tokens are made from a browser session (with X-CSRFToken): names
    the database cannot store, or that are not names, are refused."""
    client = app.test_client()
    csrf = login(client, "cb.qt-gl")
    create = Caller(world, app, "cb.qt-gl").schema["/api/v1/tokens"]["POST"]
    for name in ("bad\x00name", "\x1b[2J", "x" * 101, "", 7, ["list"], None):
        response = client.post("/api/v1/tokens", json={"name": name}, headers={"X-CSRFToken": csrf})
        _documented(create, response)
        assert response.status_code == 422 and "name" in response.get_json()["error"]["fields"], name
    response = client.post("/api/v1/tokens", data=b'{"name": "\\ud800"}',
                           headers={"X-CSRFToken": csrf, "Content-Type": "application/json"})
    assert response.status_code == 422
    with world.db.transaction() as session:
        assert session.scalars(select(ApiToken.name)).all() == ["fuzzing", "spare", "someone else's"]
