"""The sequence-flow graph of a diagram, checked one process (and one
sub-process) at a time: connected, reachable, gateways with sound defaults,
every loop bounded. Part of the diagram check (engine/diagram.py), which
holds the rest: the XML, SpiffWorkflow's parse, lanes, forms, handlers and
expressions."""
from __future__ import annotations

import ast

from lxml import etree

from engine.errors import Problem

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"

FLOW_NODE_TAGS = frozenset((
    "task", "userTask", "serviceTask", "scriptTask", "manualTask", "businessRuleTask", "sendTask",
    "receiveTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
))
SCOPE_TAGS = ("process", "subProcess", "transaction", "adHocSubProcess")


def local(element) -> str:
    """An element's tag without its namespace ('' for comments and the like)."""
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def at(element, vi: str, en: str, layer: str = "lint") -> Problem:
    """A Problem at `element` (None: the whole file)."""
    if element is None:
        return Problem(vi, layer=layer, message_en=en)
    return Problem(vi, element.get("id"), element.sourceline, layer, en, element.get("name"))


def lint_flows(root: etree._Element) -> tuple[list[Problem], list[Problem]]:
    """The sequence-flow graph of each process (and of each sub-process, on
    its own) must be sound. Errors:

    - "dangling flow": a sequence flow whose sourceRef/targetRef is not a
      flow node of the same process;
    - "not connected": a flow node without incoming flow (start events,
      boundary events and event sub-processes excepted) or without
      outgoing flow (end events excepted);
    - "not reachable from a start event" / "cannot reach an end event"
      (a boundary event counts as reached when the activity it is attached
      to is);
    - an exclusive gateway with more than one outgoing flow where a flow
      other than the default has no condition (with no default, every flow
      must have one); a default that is not one of its outgoing flows;
    - "loop without a bound": every cycle of the graph must pass through a
      *bounding* gateway: an exclusive gateway with an outgoing flow whose
      condition is a comparison involving a variable whose name contains
      "max" (e.g. `idea_returns > max_resubmissions`). Checked by removing
      the bounding gateways and looking for cycles in what is left (its
      strongly connected components); each one found is reported once, at
      its first exclusive gateway (else its first element) in document order. Whether the comparison truly
      ends the loop is not checked: the rule makes a bound visible, and the
      reviewer judges it.

    Warnings: an exclusive gateway whose outgoing flows all have conditions
    but none is the default ("conditions may not cover all cases").
    """
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for scope in root.iter(*(f"{{{BPMN}}}{tag}" for tag in SCOPE_TAGS)):
        found_errors, found_warnings = _lint_scope(scope)
        errors += found_errors
        warnings += found_warnings
    return errors, warnings


def _lint_scope(scope) -> tuple[list[Problem], list[Problem]]:
    errors: list[Problem] = []
    warnings: list[Problem] = []
    nodes = {child.get("id"): child for child in scope
             if local(child) in FLOW_NODE_TAGS and child.get("id")}
    flows = [child for child in scope if local(child) == "sequenceFlow"]
    successors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    predecessors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    outgoing: dict[str, list] = {node_id: [] for node_id in nodes}
    has_incoming: set[str] = set()
    for flow in flows:
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        bad = [f"{attr} '{ref or ''}'" for attr, ref in (("sourceRef", source), ("targetRef", target))
               if ref not in nodes]
        if bad:
            errors.append(at(flow, f"Luồng treo (dangling flow): {' và '.join(bad)} không phải một phần tử "
                                    f"của '{scope.get('id')}'",
                              f"dangling flow: {' and '.join(bad)} is not a flow node of '{scope.get('id')}'"))
            continue
        successors[source].append(target)
        predecessors[target].append(source)
        outgoing[source].append(flow)
        has_incoming.add(target)
    # A boundary event runs when its activity does: an edge for the graph walks.
    for node_id, node in nodes.items():
        attached = node.get("attachedToRef")
        if local(node) == "boundaryEvent" and attached in nodes:
            successors[attached].append(node_id)
            predecessors[node_id].append(attached)

    for node_id, node in nodes.items():
        kind = local(node)
        event_subprocess = kind in SCOPE_TAGS and node.get("triggeredByEvent") == "true"
        if node_id not in has_incoming and kind not in ("startEvent", "boundaryEvent") and not event_subprocess:
            errors.append(at(node, f"{kind} '{node_id}' không được nối: không có luồng vào",
                              f"{kind} '{node_id}' is not connected: no incoming sequence flow"))
        if not outgoing[node_id] and kind != "endEvent" and not event_subprocess:
            errors.append(at(node, f"{kind} '{node_id}' không được nối: không có luồng ra",
                              f"{kind} '{node_id}' is not connected: no outgoing sequence flow"))

    starts = [n for n, node in nodes.items() if local(node) == "startEvent"]
    ends = [n for n, node in nodes.items() if local(node) == "endEvent"]
    reached = _walk(starts, successors)
    finishing = _walk(ends, predecessors)
    for node_id, node in nodes.items():
        kind = local(node)
        if kind in SCOPE_TAGS and node.get("triggeredByEvent") == "true":
            continue
        if node_id not in reached and (node_id in has_incoming or kind == "boundaryEvent"):
            errors.append(at(node, f"{kind} '{node_id}' không thể đến được từ sự kiện bắt đầu nào của "
                                    f"'{scope.get('id')}'",
                              f"{kind} '{node_id}' is not reachable from a start event of '{scope.get('id')}'"))
        if node_id not in finishing and outgoing[node_id]:
            errors.append(at(node, f"{kind} '{node_id}' không thể đi tới sự kiện kết thúc nào của "
                                    f"'{scope.get('id')}'",
                              f"{kind} '{node_id}' cannot reach an end event of '{scope.get('id')}'"))

    bounding: set[str] = set()
    for node_id, node in nodes.items():
        if local(node) != "exclusiveGateway":
            continue
        found_errors, found_warnings = _lint_exclusive_gateway(node, outgoing[node_id])
        errors += found_errors
        warnings += found_warnings
        if any(compares_a_max(_condition(flow)) for flow in outgoing[node_id]):
            bounding.add(node_id)

    order = list(nodes)
    for component in _cycles(order, successors, skip=bounding):
        members = [n for n in order if n in component]
        gateways = [n for n in members if local(nodes[n]) == "exclusiveGateway"]
        first = nodes[(gateways or members)[0]]
        names = ", ".join(members)
        errors.append(at(
            first, f"Vòng lặp không có giới hạn: vòng qua {names} không đi qua cổng rẽ nhánh nào có điều kiện "
                   "so sánh với một biến 'max' (ví dụ returns > max_resubmissions)",
            f"loop without a bound: the cycle through {names} passes no exclusive gateway whose "
            "condition compares a 'max' variable (e.g. returns > max_resubmissions)"))
    return errors, warnings


def _lint_exclusive_gateway(gateway, flows: list) -> tuple[list[Problem], list[Problem]]:
    default = gateway.get("default")
    flow_ids = [flow.get("id") for flow in flows]
    if default and default not in flow_ids:
        return [at(gateway, f"Luồng mặc định '{default}' không phải luồng ra của cổng này",
                    f"default flow '{default}' is not an outgoing flow of the gateway")], []
    if len(flows) < 2:
        return [], []
    unconditional = [flow.get("id") for flow in flows
                     if flow.get("id") != default and not _condition(flow).strip()]
    if unconditional:
        if default:
            return [at(gateway, f"Cổng rẽ nhánh: luồng {', '.join(unconditional)} không có điều kiện và "
                                 f"không phải luồng mặc định ('{default}')",
                        f"exclusive gateway: flow(s) {', '.join(unconditional)} have no condition "
                        f"and are not the default ('{default}')")], []
        return [at(gateway, "Cổng rẽ nhánh có nhiều luồng ra nhưng không có luồng mặc định, và luồng "
                             f"{', '.join(unconditional)} không có điều kiện",
                    "exclusive gateway with several outgoing flows has no default flow and "
                    f"flow(s) {', '.join(unconditional)} have no condition")], []
    if not default:
        return [], [at(gateway, "Cổng rẽ nhánh không có luồng mặc định: các điều kiện có thể không bao "
                                 "hết mọi trường hợp",
                        "exclusive gateway has no default flow: conditions may not cover all cases")]
    return [], []


def _condition(flow) -> str:
    found = flow.find(f"{{{BPMN}}}conditionExpression")
    return (found.text or "") if found is not None else ""


def compares_a_max(source: str) -> bool:
    """True when the expression holds a comparison one of whose sides names
    a variable containing "max" (the function max() does not count)."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        called = {id(call.func) for call in ast.walk(node) if isinstance(call, ast.Call)}
        if any(isinstance(name, ast.Name) and "max" in name.id.lower() and id(name) not in called
               for name in ast.walk(node)):
            return True
    return False


def _walk(starts: list[str], edges: dict[str, list[str]]) -> set[str]:
    seen = set(starts)
    stack = list(starts)
    while stack:
        for following in edges.get(stack.pop(), ()):
            if following not in seen:
                seen.add(following)
                stack.append(following)
    return seen


def _cycles(order: list[str], successors: dict[str, list[str]], skip: set[str]) -> list[set[str]]:
    """Strongly connected components (Tarjan, iterative) of the graph
    without the `skip` nodes that hold a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    counter = 0
    for root_id in order:
        if root_id in skip or root_id in index:
            continue
        work = [(root_id, iter(successors[root_id]))]
        index[root_id] = low[root_id] = counter
        counter += 1
        stack.append(root_id)
        on_stack.add(root_id)
        while work:
            node_id, children = work[-1]
            advanced = False
            for child in children:
                if child in skip:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node_id] = min(low[node_id], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node_id])
            if low[node_id] == index[node_id]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node_id:
                        break
                if len(component) > 1 or node_id in successors[node_id]:
                    components.append(component)
    return components
