"""The lint layer's flow-graph rules: a corpus of broken diagrams, one per
rule, each derived from the bundled seed-era diagram by a small string edit
and each expected to be refused with its own message at its own element."""
from pathlib import Path

import pytest

from engine import diagram, flow_graph

PROCESSES = Path(__file__).resolve().parents[1] / "processes"
SEED = (PROCESSES / "ocop_cycle.bpmn").read_text(encoding="utf-8")
TWO_TIER = (PROCESSES / "variants" / "ocop_cycle_two_tier.bpmn").read_text(encoding="utf-8")


def edit(*replacements: tuple[str, str]) -> str:
    xml = SEED
    for old, new in replacements:
        assert old in xml, old
        xml = xml.replace(old, new, 1)
    return xml


def check(xml: str) -> diagram.CheckedDiagram:
    return diagram.check(xml.encode("utf-8"))


def assert_problem(problems, fragment: str, element_id: str) -> None:
    matching = [p for p in problems if fragment in p.message_en and p.element_id == element_id]
    assert matching, f"no '{fragment}' at {element_id} in: " + " | ".join(map(str, problems))
    assert all(p.line and p.layer == "lint" for p in matching)


@pytest.mark.parametrize("xml", [SEED, TWO_TIER])
def test_bundled_diagrams_have_neither_errors_nor_warnings(xml):
    result = check(xml)
    assert (result.problems, result.warnings) == ([], [])


OUTREACH_REPORT_FLOW = ('<bpmn:sequenceFlow id="flow_outreach_report" sourceRef="service_open_registration" '
                        'targetRef="task_outreach_report"/>')
RETURN_FLOW = ('<bpmn:sequenceFlow id="flow_idea_return" sourceRef="gw_idea_decision" '
               'targetRef="script_idea_return" name="Trả lại"')

# (rule, edits, expected message fragment, element it names)
CORPUS = {
    "unreachable": (
        [('<bpmn:sequenceFlow id="flow_start_init" sourceRef="start_product_cycle" targetRef="script_init_counters"/>',
          '<bpmn:sequenceFlow id="flow_start_init" sourceRef="start_product_cycle" targetRef="end_idea_limit"/>')],
        "is not reachable from a start event", "task_review_idea"),
    "cannot_finish": (
        [('sourceRef="task_outreach_report" targetRef="end_outreach"',
          'sourceRef="task_outreach_report" targetRef="task_plan_outreach"')],
        "cannot reach an end event", "task_plan_outreach"),
    "no_default": (
        [(' default="flow_idea_return"', '')],
        "has no default flow and flow(s) flow_idea_return have no condition", "gw_idea_decision"),
    "unconditional_besides_default": (
        [(' default="flow_idea_return"', ' default="flow_idea_accept"')],
        "flow(s) flow_idea_return have no condition and are not the default", "gw_idea_decision"),
    "default_elsewhere": (
        [(' default="flow_idea_return"', ' default="flow_plan_return"')],
        "default flow 'flow_plan_return' is not an outgoing flow", "gw_idea_decision"),
    "dangling_flow": (
        [('sourceRef="task_outreach_report" targetRef="end_outreach"',
          'sourceRef="task_outreach_report" targetRef="end_recognised"')],
        "dangling flow: targetRef 'end_recognised' is not a flow node of 'ocop_outreach'",
        "flow_outreach_end"),
    "no_incoming": (
        [(OUTREACH_REPORT_FLOW, "")],
        "'task_outreach_report' is not connected: no incoming sequence flow", "task_outreach_report"),
    "no_outgoing": (
        [(OUTREACH_REPORT_FLOW, "")],
        "'service_open_registration' is not connected: no outgoing sequence flow",
        "service_open_registration"),
    "unbounded_loop": (
        [("idea_returns &gt; max_resubmissions", "idea_returns &gt; 3")],
        "loop without a bound: the cycle through task_receive_idea, task_register_idea", "gw_idea_decision"),
    "max_function_is_no_bound": (
        [("plan_returns &gt; max_resubmissions", "max(plan_returns, 1) &gt; 3")],
        "loop without a bound: the cycle through task_submit_plan", "gw_plan_decision"),
}


@pytest.mark.parametrize("rule", sorted(CORPUS))
def test_each_rule_refuses_its_broken_diagram(rule):
    edits, fragment, element_id = CORPUS[rule]
    result = check(edit(*edits))
    assert not result.ok
    assert_problem(result.problems, fragment, element_id)


def test_all_conditional_gateway_without_default_is_only_a_warning():
    xml = edit(
        (' default="flow_idea_return"', ''),
        (RETURN_FLOW + "/>",
         RETURN_FLOW + '><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">'
         "idea_review['decision'] != 'accept'</bpmn:conditionExpression></bpmn:sequenceFlow>"))
    result = check(xml)
    assert result.problems == []
    assert [(w.element_id, w.layer) for w in result.warnings] == [("gw_idea_decision", "lint")]
    assert "conditions may not cover all cases" in result.warnings[0].message_en
    assert result.warnings[0].line


def test_a_reference_to_nothing_is_a_dangling_flow_in_the_lint_layer_too():
    # The XSD already refuses an IDREF to no element; the lint layer does not rely on it.
    root, found = diagram.read_xml(edit(('targetRef="end_outreach"', 'targetRef="nowhere"')).encode())
    assert found == []
    assert_problem(diagram.lint(root), "dangling flow: targetRef 'nowhere'", "flow_outreach_end")


def test_a_loop_through_a_max_comparison_is_bounded():
    # The bundled loops pass the rule because of the limit gateways' conditions...
    assert flow_graph.compares_a_max("idea_returns > max_resubmissions")
    assert flow_graph.compares_a_max("MAX_ROUNDS <= rounds and ok")
    # ...and not for a name that merely calls max() or compares nothing.
    assert not flow_graph.compares_a_max("max(a, b) > 3")
    assert not flow_graph.compares_a_max("max_resubmissions")
