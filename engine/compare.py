"""Comparing two versions of a diagram, element by element.

`compare(xml_a, xml_b)` reads both with engine.diagram.read_xml (the
hardened parser: no DTD, no entities, no network, size limit) and lists the
flow elements -- tasks, events, gateways, sub-processes, sequence flows and
lanes -- that were added, removed or changed from a to b. An element is
matched by its id; "changed" names each differing attribute with its value
on both sides:

- name, type (the element's tag), lane (for flow nodes), process;
- spiffworkflow properties (`property:<name>`), pre/post scripts, the
  script of a script task;
- a service task's operator (`operator`) and its parameters (`param:<id>`);
- a sequence flow's source, target and condition expression;
- a lane's name and the nodes it holds (`nodes`).

Diagram layout (bpmndi) is ignored: moving a shape changes nothing here.
"""
from __future__ import annotations

from lxml import etree

from engine.diagram import FLOW_NODE_TAGS, NS, read_xml
from engine.errors import DiagramError

KINDS = FLOW_NODE_TAGS | {"sequenceFlow", "lane"}


def compare(xml_a: bytes | str, xml_b: bytes | str) -> dict:
    """{"added": [...], "removed": [...], "changed": [...], "counts": {...}}.
    Added and removed entries are {id, type, name, process}; changed entries
    are {id, type, name, changes: {attribute: [value_a, value_b]}}. Raises
    DiagramError when either side is not a readable BPMN file."""
    a, b = _elements(xml_a), _elements(xml_b)
    added = [_summary(b[key]) for key in b if key not in a]
    removed = [_summary(a[key]) for key in a if key not in b]
    changed = []
    for key, old in a.items():
        new = b.get(key)
        if new is None:
            continue
        differences = {attr: [old.get(attr), new.get(attr)]
                       for attr in sorted(set(old) | set(new)) if old.get(attr) != new.get(attr)}
        if differences:
            changed.append({"id": key, "type": new["type"], "name": new.get("name") or old.get("name"),
                            "changes": differences})
    return {"added": added, "removed": removed, "changed": changed,
            "counts": {"added": len(added), "removed": len(removed), "changed": len(changed)}}


def _summary(element: dict) -> dict:
    return {"id": element["id"], "type": element["type"], "name": element.get("name"),
            "process": element.get("process")}


def _elements(xml: bytes | str) -> dict[str, dict]:
    root, problems = read_xml(xml)
    if problems:
        raise DiagramError(problems)
    lanes: dict[str, str] = {}
    for lane in root.iter(f"{{{NS['bpmn']}}}lane"):
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            lanes[(ref.text or "").strip()] = lane.get("name") or lane.get("id")
    found: dict[str, dict] = {}
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        qname = etree.QName(node)
        if qname.namespace != NS["bpmn"] or qname.localname not in KINDS or not node.get("id"):
            continue
        found[node.get("id")] = _attributes(node, qname.localname, lanes)
    return found


def _attributes(node, kind: str, lanes: dict[str, str]) -> dict:
    element_id = node.get("id")
    attrs: dict = {"id": element_id, "type": kind, "name": node.get("name") or None,
                   "process": _process_of(node)}
    if kind == "lane":
        refs = sorted((ref.text or "").strip() for ref in node.findall("bpmn:flowNodeRef", NS))
        attrs["nodes"] = ", ".join(refs)
        return _clean(attrs)
    if kind == "sequenceFlow":
        attrs["source"] = node.get("sourceRef")
        attrs["target"] = node.get("targetRef")
        condition = node.find("bpmn:conditionExpression", NS)
        attrs["condition"] = (condition.text or "").strip() if condition is not None else None
        return _clean(attrs)
    attrs["lane"] = lanes.get(element_id)
    if node.get("default"):
        attrs["default"] = node.get("default")
    if node.get("attachedToRef"):
        attrs["attached_to"] = node.get("attachedToRef")
    extensions = node.find("bpmn:extensionElements", NS)
    if extensions is not None:
        for prop in extensions.iterfind("spiffworkflow:properties/spiffworkflow:property", NS):
            attrs[f"property:{prop.get('name')}"] = prop.get("value")
        for tag in ("preScript", "postScript"):
            script = extensions.find(f"spiffworkflow:{tag}", NS)
            if script is not None:
                attrs[tag] = (script.text or "").strip()
        operator = extensions.find("spiffworkflow:serviceTaskOperator", NS)
        if operator is not None:
            attrs["operator"] = operator.get("id")
            if operator.get("resultVariable"):
                attrs["result_variable"] = operator.get("resultVariable")
            for param in operator.iterfind("spiffworkflow:parameters/spiffworkflow:parameter", NS):
                attrs[f"param:{param.get('id')}"] = f"{param.get('value')} ({param.get('type')})"
    script = node.find("bpmn:script", NS)
    if script is not None:
        attrs["script"] = (script.text or "").strip()
    for definition in node:
        if isinstance(definition.tag, str) and etree.QName(definition).localname.endswith("EventDefinition"):
            attrs["event"] = etree.QName(definition).localname
            for child in definition:
                if isinstance(child.tag, str):
                    attrs[f"event:{etree.QName(child).localname}"] = (child.text or "").strip()
    return _clean(attrs)


def _process_of(node) -> str | None:
    parent = node.getparent()
    while parent is not None:
        if isinstance(parent.tag, str) and etree.QName(parent).localname == "process":
            return parent.get("id")
        parent = parent.getparent()
    return None


def _clean(attrs: dict) -> dict:
    return {key: value for key, value in attrs.items() if value is not None}
