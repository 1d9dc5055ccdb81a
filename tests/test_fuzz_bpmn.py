"""Hostile diagrams: what a program manager's upload may try, through the
endpoints that take one (/definitions/validate, /definitions/deploy as a
form and as JSON, /definitions/dryrun) and the checker behind them
(engine/diagram.py, engine/expressions.py).

Covered here:
- XML that is no diagram: malformed, truncated, empty, binary, HTML, a
  document nested 100 000 deep, over the checker's 2 MB and over the
  request's 20 MB (413);
- XML that reaches out: billion laughs, external entities (file:///etc/passwd,
  an http URL), a parameter entity, an external DTD, the same in UTF-16
  (past the byte search for "<!DOCTYPE"; any encoding but UTF-8 is
  refused), XInclude of a file and of a URL,
  processing instructions (xml-stylesheet, <?php ?>). A loopback HTTP
  server stands in for the outside: no request may reach it, and no
  file's content may appear in an answer;
- expressions that try to leave the sandbox or exhaust the server
  (`__import__`, `__subclasses__`, `open`, lambda, dunder attributes,
  comprehensions, `9**9**9`, a 10 GB repetition, printf padding, `str()`
  of a nested list, `round(5, -10**9)`, 300-deep unary chains, very long
  expressions) in every place SpiffWorkflow evaluates one: gateway
  conditions, script tasks, pre-scripts, timers, service-task parameters,
  conditional events. Each is refused at check and deploy time with the
  element named, and nothing is stored;
- what can only fail at run time (a condition that repeats a process
  variable 10**10 times) fails as a clear error with nothing written;
- hypothesis: the shipped diagram with random attribute values and
  removed elements never makes the checker raise, only report;
- after all of it the server still deploys a valid diagram.

Elsewhere: test_diagrams.py (the checker's layers on the bundled diagrams,
malformed XML naming its line, XSD violations, unknown handlers, forms and
lanes, the first entity payloads), test_expressions.py (the allow-list
language itself, refusals at check and at run time), test_web_definitions.py
(who may validate and deploy, a broken diagram listed and not stored).
"""
from __future__ import annotations

import http.server
import io
import threading
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import func, select

from engine import diagram, expressions
from engine.errors import ProcessRefused
from storage.models import AuditEvent, Jurisdiction, ProcessDefinition, ProcessInstance
from testkit.cycle import Cycle
from testkit.web_login import login

sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

PROCESSES = Path(__file__).resolve().parents[1] / "processes"
SEED = (PROCESSES / "ocop_cycle.bpmn").read_text(encoding="utf-8")
BODY = SEED.split("?>", 1)[1]  # without the XML declaration
DEFINITIONS = '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">'
SECRET = "root:"  # the first line of /etc/passwd


# --- a stand-in for the outside world ----------------------------------------------------------

@pytest.fixture
def canary():
    """A loopback HTTP server that records every request made to it."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server interface
            seen.append(self.path)
            body = b'<!ENTITY leak "fetched">'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    thread.join(10)


def hostile_documents(url: str) -> dict[str, tuple[bytes, str]]:
    """name -> (the upload, a fragment its refusal must contain)."""
    laughs = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
              + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
              + f']>{DEFINITIONS}<bpmn:process id="p" name="&j;"/></bpmn:definitions>')
    xxe_file = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                + BODY.replace('name="Chu trình OCOP', 'name="&x;Chu trình OCOP', 1))
    xinclude = '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{}" parse="text"/>'
    return {
        "malformed": (SEED.replace("</bpmn:process>", "</bpmn:proces>", 1).encode(), "not well-formed"),
        "truncated": (SEED.encode()[:len(SEED) // 2], "not well-formed"),
        "empty": (b"", "empty"),
        "binary": (bytes(range(256)) * 8, "not a BPMN diagram"),
        "html": (b"<html><body><script>alert(1)</script></body></html>", "bpmn:definitions"),
        "not bpmn": (b'<?xml version="1.0"?><definitions xmlns="urn:other"/>', "bpmn:definitions"),
        "nested 100k": ((DEFINITIONS + "<a>" * 100_000 + "</a>" * 100_000 + "</bpmn:definitions>").encode(),
                        "nested too deeply"),
        "over 2 MB": ((SEED + "<!--" + "x" * diagram.MAX_BPMN_BYTES + "-->").encode(), "limit"),
        "billion laughs": (laughs.encode(), "DOCTYPE"),
        "external entity, file": (xxe_file.encode(), "DOCTYPE"),
        "external entity, http": (xxe_file.replace("file:///etc/passwd", f"{url}/entity").encode(), "DOCTYPE"),
        "parameter entity": (f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]>{BODY}'
                             .encode(), "DOCTYPE"),
        "external DTD": (f'<?xml version="1.0"?><!DOCTYPE bpmn:definitions SYSTEM "{url}/bpmn.dtd">{BODY}'
                         .encode(), "DOCTYPE"),
        "external entity, UTF-16": (xxe_file.replace('<?xml version="1.0"?>', "").encode("utf-16"),
                                    "DOCTYPE|external entity|UTF-8"),
        "a good diagram in UTF-16": (SEED.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"),
                                     "UTF-8"),  # was stored as UTF-8 text: a 500
        "XInclude, file": (SEED.replace("<bpmn:extensionElements>", "<bpmn:extensionElements>"
                                        + xinclude.format("file:///etc/passwd"), 1).encode(), "XInclude"),
        "XInclude, http": (SEED.replace("<bpmn:extensionElements>", "<bpmn:extensionElements>"
                                        + xinclude.format(f"{url}/x"), 1).encode(), "XInclude"),
        "stylesheet PI": (SEED.replace("<bpmn:definitions", f'<?xml-stylesheet type="text/xsl" href="{url}/x.xsl"?>'
                                       "<bpmn:definitions", 1).encode(), "processing instruction"),
        "php PI": (SEED.replace("<bpmn:process", "<?php system('id'); ?><bpmn:process", 1).encode(),
                   "processing instruction"),
    }


def _definitions(world) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(ProcessDefinition))


def _quang_tri(world) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT"))


def _mentions(text: str, fragments: str) -> bool:
    return any(fragment in text for fragment in fragments.split("|"))


def _answers(response) -> str:
    text = response.get_data(as_text=True)
    assert SECRET not in text and "Traceback" not in text and "fetched" not in text
    return text


@sqlite
def test_hostile_documents_are_refused_everywhere_and_reach_nothing(world, client, canary):
    url, requests_seen = canary
    token = login(client, "qlct.qt")
    province = str(_quang_tri(world))
    before = _definitions(world)
    for name, (xml, fragment) in hostile_documents(url).items():
        problems = diagram.check(xml).problems
        assert problems and _mentions(" ".join(map(str, problems)), fragment), (name, problems)

        checked = client.post("/definitions/validate", data={"csrf_token": token, "file": (io.BytesIO(xml), "d.bpmn")},
                              content_type="multipart/form-data")
        assert checked.status_code == 200 and checked.get_json()["ok"] is False, name
        assert _mentions(_answers(checked), fragment), name

        as_json = client.post("/definitions/deploy", content_type="multipart/form-data",
                              headers={"Accept": "application/json"},
                              data={"csrf_token": token, "file": (io.BytesIO(xml), "d.bpmn"), "name": "ocop_cycle",
                                    "province_id": province, "message": name})
        assert as_json.status_code == 422 and as_json.get_json()["errors"], (name, as_json.status_code)
        assert _mentions(_answers(as_json), fragment), name

        as_page = client.post("/definitions/deploy", content_type="multipart/form-data",
                              data={"csrf_token": token, "file": (io.BytesIO(xml), "d.bpmn"), "name": "ocop_cycle",
                                    "province_id": province})
        assert as_page.status_code == 422 and as_page.mimetype == "text/html", name
        _answers(as_page)

        dry = client.post("/definitions/dryrun?products=1", data=xml, content_type="application/xml",
                          headers={"X-CSRFToken": token})
        assert dry.status_code < 500 and dry.get_json()["ok"] is False, (name, dry.status_code)
        _answers(dry)
    assert _definitions(world) == before
    assert requests_seen == []  # nothing was fetched from "outside"


@sqlite
def test_a_request_over_the_size_limit_is_413(world, app, client):
    token = login(client, "qlct.qt")
    huge = b"<" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    for path in ("/definitions/validate", "/definitions/deploy"):
        response = client.post(path, data={"csrf_token": token, "file": (io.BytesIO(huge), "d.bpmn")},
                               content_type="multipart/form-data")
        assert response.status_code == 413, path
    assert client.get("/definitions/").status_code == 200


# --- expressions that try to leave the sandbox ----------------------------------------------------

ATTACKS = [
    ("__import__('os').system('touch /tmp/ocop-pwned')", "not allowed"),
    ("().__class__.__bases__[0].__subclasses__()", "not allowed"),
    ("open('/etc/passwd').read()", "not allowed"),
    ("(lambda: __import__('os'))()", "not allowed"),
    ("idea_review.__dict__", "not allowed"),
    ("[c for c in ().__class__.__mro__]", "not allowed"),
    ("getattr(idea_review, '__class__')", "not allowed"),
    ("eval('1')", "not allowed"),
    ("9**9**9", "not allowed"),
    ("'x' * 10000000000", "cannot be evaluated"),
    ("[0] * 100000000", "cannot be evaluated"),
    ("'%0999999999d' % 1", "not allowed"),
    ("str([[0] * 99999] * 99999)", "cannot be evaluated"),
    ("round(5, -1000000000)", "cannot be evaluated"),
    ("-" * 300 + "1", "nested more than"),
    ("1 + " * 700 + "1", "longer than|nested more than"),
]


def _service_task_of_business_plan() -> str:
    root, _ = diagram.read_xml(SEED.encode())
    param = root.xpath("//spiffworkflow:parameter[@value=\"'business_plan'\"]", namespaces=diagram.NS)[0]
    return next(a for a in param.iterancestors() if etree.QName(a).localname == "serviceTask").get("id")


PLACES = {
    # place: (element named in the problem, how to put an attack there)
    "gateway condition": ("flow_idea_accept", lambda a: SEED.replace(
        "idea_review['decision'] == 'accept'", escape(a), 1)),
    "script task": ("script_init_counters", lambda a: SEED.replace(
        "idea_returns = 0", escape(f"idea_returns = {a}"), 1)),
    "pre-script": ("script_init_counters", lambda a: SEED.replace(
        "<spiffworkflow:property name=\"step\" value=\"2\"/>\n        </spiffworkflow:properties>",
        f"<spiffworkflow:property name=\"step\" value=\"2\"/>\n        </spiffworkflow:properties>"
        f"<spiffworkflow:preScript>{escape(f'x = {a}')}</spiffworkflow:preScript>", 1)),
    "timer": ("timer_check_dossier_late", lambda a: SEED.replace("working_days_from_now(15)", escape(a), 1)),
    "service parameter": (_service_task_of_business_plan(), lambda a: SEED.replace(
        "value=\"'business_plan'\"", f"value={quoteattr(a)}", 1)),
    "conditional event": ("timer_check_dossier_late", lambda a: SEED.replace(
        '<bpmn:timerEventDefinition id="timer_check_dossier_late_definition">\n'
        '        <bpmn:timeDate xsi:type="bpmn:tFormalExpression">working_days_from_now(15)</bpmn:timeDate>\n'
        "      </bpmn:timerEventDefinition>",
        '<bpmn:conditionalEventDefinition id="late_condition"><bpmn:condition xsi:type="bpmn:tFormalExpression">'
        f"{escape(a)}</bpmn:condition></bpmn:conditionalEventDefinition>", 1)),
}


def test_every_place_is_reached_and_accepts_a_harmless_expression():
    for place, (element, put) in PLACES.items():
        changed = put("stars >= 0" if place != "service parameter" else "'business_plan'")
        assert changed != SEED or place == "service parameter", place
        found = [str(p) for p in diagram.check(changed.encode()).problems]
        assert not [p for p in found if "not allowed" in p or "cannot be evaluated" in p], (place, found)


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("attack, fragment", ATTACKS, ids=[a[:24] for a, _ in ATTACKS])
def test_escaping_expressions_are_refused_before_deploy(place, attack, fragment):
    element, put = PLACES[place]
    xml = put(attack)
    assert xml != SEED, place
    problems = [p for p in diagram.check(xml.encode()).problems if p.layer == "lint"]
    assert any(p.element_id == element and p.line and _mentions(p.message_en, fragment)
               for p in problems), (place, attack, [str(p) for p in problems])
    assert not Path("/tmp/ocop-pwned").exists()


@sqlite
def test_escaping_diagrams_are_not_deployed(world, client):
    token = login(client, "qlct.qt")
    province = str(_quang_tri(world))
    before = _definitions(world)
    for index, (attack, _fragment) in enumerate(ATTACKS):
        place = sorted(PLACES)[index % len(PLACES)]
        xml = PLACES[place][1](attack).encode()
        response = client.post("/definitions/deploy", content_type="multipart/form-data",
                               headers={"Accept": "application/json"},
                               data={"csrf_token": token, "file": (io.BytesIO(xml), "d.bpmn"), "name": "ocop_cycle",
                                     "province_id": province})
        assert response.status_code == 422, (place, attack, response.status_code)
        assert response.get_json()["errors"] and SECRET not in _answers(response)
    assert _definitions(world) == before
    # The server is none the worse: a valid diagram still deploys.
    valid = SEED.replace("Đăng ký ý tưởng sản phẩm", "Đăng ký", 1).encode()
    response = client.post("/definitions/deploy", content_type="multipart/form-data",
                           headers={"Accept": "application/json"},
                           data={"csrf_token": token, "name": "ocop_cycle", "province_id": province,
                                 "file": (io.BytesIO(valid), "d.bpmn")})
    assert response.status_code == 201 and _definitions(world) == before + 1


def test_expression_limits_hold_at_run_time_too():
    """What a check lets through because it reads variables is bounded when it runs."""
    names = {"x": [0] * 99_999, "n": 99_999_999_999, "s": "%0999999999d", "big": [[0] * 99_999] * 99_999}
    for source in ("x * 2", "[x] * 99999 + [x] * 99999", "s % 1", "str(big)", "round(n, -1000000000)",
                   "sum(big)"):
        with pytest.raises(Exception) as caught:
            expressions.evaluate(source, names)
        assert not isinstance(caught.value, (RecursionError, MemoryError)), source
    assert expressions.evaluate("len(big)", names) == 99_999  # a shared list is walked once
    data = {"n": 99_999_999_999}
    with pytest.raises(Exception, match="bits"):
        expressions.run_script("\n".join(["n = n * n"] * 40), data)


@sqlite
def test_a_condition_that_can_only_fail_at_run_time_fails_cleanly(world, app, client):
    bomb = SEED.replace("idea_review['decision'] == 'accept'", "idea_review['decision'] * 10000000000 == 'x'", 1)
    assert diagram.check(bomb.encode()).ok  # it reads a variable: nothing to refuse before it runs
    world.deploy(bomb.encode(), "ocop_cycle", "tester", "a condition that fails when it runs")
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    task_id = cycle.task("review_idea").id

    def state():
        with world.db.transaction() as session:
            return (session.get(ProcessInstance, cycle.instance_id).version,
                    session.scalar(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.instance_id == cycle.instance_id)))

    before = state()
    with pytest.raises(ProcessRefused, match="Error evaluating expression") as refused:
        cycle.do("review_idea", {"decision": "accept"})
    assert refused.value.element == "gw_idea_decision"  # a gateway's refusal, not a service task's
    token = login(client, "cb.qt-gl")
    page = client.post(f"/inbox/tasks/{task_id}", data={"csrf_token": token, "decision": "accept"})
    assert page.status_code == 409 and "chưa có gì được lưu" in page.get_data(as_text=True)
    assert state() == before and cycle.ready_forms() == ["review_idea"]


# --- random damage to a real diagram ---------------------------------------------------------------

_ROOT = etree.fromstring(SEED.encode())
_ELEMENTS = [el for el in _ROOT.iter() if isinstance(el.tag, str)]
_ATTRIBUTES = [(index, name) for index, el in enumerate(_ELEMENTS) for name in el.attrib]
XML_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30)


@st.composite
def damaged(draw) -> bytes:
    root = etree.fromstring(SEED.encode())
    elements = [el for el in root.iter() if isinstance(el.tag, str)]
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            index, name = draw(st.sampled_from(_ATTRIBUTES))
            elements[index].set(name, draw(XML_TEXT))
        else:
            victim = elements[draw(st.integers(1, len(elements) - 1))]
            if victim.getparent() is not None:
                victim.getparent().remove(victim)
            elements = [el for el in root.iter() if isinstance(el.tag, str)]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(xml=damaged())
def test_a_damaged_diagram_gets_a_report_never_an_exception(xml):
    checked = diagram.check(xml)
    assert all(problem.message and problem.message_en for problem in checked.problems)
    # Plain words: one line each, no library repr or traceback, no namespace URI.
    for text in map(str, checked.problems + checked.warnings):
        assert "\n" not in text and not any(jargon in text for jargon in ("<Element", " at 0x", "Traceback", "{http"))
