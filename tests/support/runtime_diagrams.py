"""The national diagram (processes/ocop_cycle.bpmn) changed so that it
passes the checks and then breaks at run time: used by
tests/test_runtime_refusals.py, tests/test_dryrun.py and
tests/test_web_definitions.py."""
from programme.definitions import NATIONAL_DIAGRAM

XML = NATIONAL_DIAGRAM[1].read_text(encoding="utf-8")

# The idea's return loop, closed on itself without a person: the counter is
# reset instead of incremented, so `idea_returns > max_resubmissions` never holds.
SCRIPT_LOOP = (XML.replace("<bpmn:script>idea_returns = idea_returns + 1", "<bpmn:script>idea_returns = 0")
               .replace('sourceRef="notify_idea_returned" targetRef="task_register_idea"',
                        'sourceRef="notify_idea_returned" targetRef="script_idea_return"'))
# Gateways only: a gateway before the counter loops on itself while
# `idea_returns <= max_resubmissions` -- which nothing inside changes.
# A condition that compares with max_resubmissions (the loop lint is
# satisfied) on a counter these loops never change.
SAME_COUNT = "idea_returns &lt;= max_resubmissions"
SPIN = f"""<bpmn:exclusiveGateway id="gw_spin" name="Chờ lượt" default="flow_spin_out">
      <bpmn:incoming>flow_idea_return</bpmn:incoming>
      <bpmn:incoming>flow_spin_again</bpmn:incoming>
      <bpmn:outgoing>flow_spin_again</bpmn:outgoing>
      <bpmn:outgoing>flow_spin_out</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="flow_spin_again" sourceRef="gw_spin" targetRef="gw_spin">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{SAME_COUNT}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="flow_spin_out" sourceRef="gw_spin" targetRef="script_idea_return"/>
    """
SCRIPT_IDEA_RETURN = '<bpmn:scriptTask id="script_idea_return"'
GATEWAY_LOOP = (XML.replace(SCRIPT_IDEA_RETURN, SPIN + SCRIPT_IDEA_RETURN, 1)
                .replace('sourceRef="gw_idea_decision" targetRef="script_idea_return"',
                         'sourceRef="gw_idea_decision" targetRef="gw_spin"')
                .replace("<bpmn:flowNodeRef>script_idea_return</bpmn:flowNodeRef>",
                         "<bpmn:flowNodeRef>gw_spin</bpmn:flowNodeRef>"
                         "<bpmn:flowNodeRef>script_idea_return</bpmn:flowNodeRef>"))
# The dossier check's deadline, computed from a variable at run time: 'P3X'.
BAD_TIMER = XML.replace("working_days_from_now(15)", "'P' + str(max_resubmissions) + 'X'")
# A gateway's condition names a variable that does not exist.
UNDEFINED_IN_GATEWAY = XML.replace("idea_returns &gt; max_resubmissions", "idea_returns &gt; max_resubmission", 1)
# task_register_idea taken out of its lane: SpiffWorkflow gives it lane None.
NO_LANE = XML.replace("<bpmn:flowNodeRef>task_register_idea</bpmn:flowNodeRef>", "", 1)
# A boundary timer on the idea's registration that fires at once and leads
# back to the registration through a gateway comparing with
# max_resubmissions (so the loop lint is satisfied) on a counter nothing
# changes: every firing makes the producer's task again.
TIMER_LOOP = (XML.replace(
    '<bpmn:userTask id="task_register_idea"',
    f"""<bpmn:boundaryEvent id="timer_register_again" name="Đăng ký lại" attachedToRef="task_register_idea">
      <bpmn:outgoing>flow_register_again</bpmn:outgoing>
      <bpmn:timerEventDefinition id="timer_register_again_definition">
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">'PT0S'</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:exclusiveGateway id="gw_register_again" name="Còn lượt?" default="flow_register_over">
      <bpmn:incoming>flow_register_again</bpmn:incoming>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="end_register_over" name="Hết lượt"/>
    <bpmn:sequenceFlow id="flow_register_again" sourceRef="timer_register_again" targetRef="gw_register_again"/>
    <bpmn:sequenceFlow id="flow_register_back" sourceRef="gw_register_again" targetRef="task_register_idea">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{SAME_COUNT}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="flow_register_over" sourceRef="gw_register_again" targetRef="end_register_over"/>
    <bpmn:userTask id="task_register_idea\"""", 1)
    .replace("<bpmn:flowNodeRef>task_register_idea</bpmn:flowNodeRef>",
             "".join(f"<bpmn:flowNodeRef>{node}</bpmn:flowNodeRef>" for node in (
                 "task_register_idea", "timer_register_again", "gw_register_again", "end_register_over")), 1))
