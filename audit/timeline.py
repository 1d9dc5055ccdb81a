"""An instance's history for the auditor: timeline rows and diagram frames.

Both are read from the audit events alone (never from the workflow state),
so what the auditor sees is exactly what the hash chain covers.

- `timeline_rows`: one row per event, with who acted (name and role), when,
  a label and the data it changed. Bookkeeping events (`engine_steps`,
  `tasks_ready`) are rows too, marked `main=False`, so a page can hide them
  until asked; unknown kinds are shown with their raw data.
- `frames`: the diagram's state after each event, as deltas (an instance
  may have hundreds of events): elements completed and how often, sequence
  flows taken and how often, the ready user tasks with who holds them, and
  who completed each user task.

Which flow was taken is not recorded as such; it is derived by tokens: a
completed element puts a token on each of its outgoing flows (a gateway
only on the flows its `gateway_decision` names). When an element is
reached -- a user task when it becomes ready, anything else when it
completes -- it takes the most recent token waiting on one of its incoming
flows (a parallel join takes one from every incoming flow that has one), and
that flow is counted. Without a token, the flow from the most recently
completed element that has a flow to it is counted.

The diagram is the instance's final definition: after a `migrated` event
the rest of the history ran on that version, and the viewer shows it.
"""
from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from engine.diagram import FLOW_NODE_TAGS, NS, read_xml
from engine.errors import DiagramError
from storage.db import as_utc
from storage.models import (
    AuditEvent,
    Jurisdiction,
    ProcessDefinition,
    ProcessInstance,
    Producer,
    Product,
    RoleAssignment,
    User,
)

# Events that only say what the engine did between the ones people read.
BOOKKEEPING_KINDS = frozenset({"engine_steps", "tasks_ready"})
# Gateways that wait for every incoming branch: reaching one takes a token from each.
_JOINS = frozenset({"parallelGateway", "inclusiveGateway", "complexGateway"})
_GRAPH_CACHE_SIZE = 16


# --- the diagram as a graph ----------------------------------------------------------

@dataclass(frozen=True)
class DiagramGraph:
    """What the frames need of a BPMN file: element names and types, and
    the sequence flows between them."""

    names: dict[str, str]                      # element id -> name (flow nodes and flows)
    types: dict[str, str]                      # flow node id -> BPMN tag (userTask, exclusiveGateway, ...)
    outgoing: dict[str, list[tuple[str, str]]]  # source -> [(flow id, target)]
    incoming: dict[str, list[tuple[str, str]]]  # target -> [(flow id, source)]

    def name(self, element_id: str | None) -> str | None:
        if element_id is None:
            return None
        return self.names.get(element_id) or element_id


def read_graph(xml: bytes | str) -> DiagramGraph:
    """The flow graph of every process in the file (through the hardened parser)."""
    root, problems = read_xml(xml)
    if problems:
        raise DiagramError(problems)
    names: dict[str, str] = {}
    types: dict[str, str] = {}
    outgoing: dict[str, list[tuple[str, str]]] = {}
    incoming: dict[str, list[tuple[str, str]]] = {}
    for node in root.iter():
        if not isinstance(node.tag, str) or not node.get("id"):
            continue
        qname = etree.QName(node)
        if qname.namespace != NS["bpmn"]:
            continue
        element_id = node.get("id")
        if qname.localname in FLOW_NODE_TAGS:
            types[element_id] = qname.localname
            names[element_id] = " ".join((node.get("name") or "").split())
        elif qname.localname == "sequenceFlow":
            source, target = node.get("sourceRef"), node.get("targetRef")
            names[element_id] = " ".join((node.get("name") or "").split())
            outgoing.setdefault(source, []).append((element_id, target))
            incoming.setdefault(target, []).append((element_id, source))
    return DiagramGraph(names, types, outgoing, incoming)


_graphs: OrderedDict[str, DiagramGraph] = OrderedDict()
_graphs_lock = threading.Lock()


def graph_for(session: Session, definition_id: int) -> DiagramGraph:
    """The graph of a deployed version, parsed once per process: deployments
    never change, so their sha256 is the cache key and the XML is loaded
    only on a miss."""
    digest = session.scalar(select(ProcessDefinition.sha256).where(ProcessDefinition.id == definition_id))
    with _graphs_lock:
        graph = _graphs.get(digest)
        if graph is not None:
            _graphs.move_to_end(digest)
            return graph
    xml = session.scalar(select(ProcessDefinition.bpmn_xml).where(ProcessDefinition.id == definition_id))
    graph = read_graph(xml)
    with _graphs_lock:
        _graphs[digest] = graph
        while len(_graphs) > _GRAPH_CACHE_SIZE:
            _graphs.popitem(last=False)
    return graph


@dataclass(frozen=True)
class InstanceDiagram:
    """The diagram an instance's history is drawn on: its final definition."""

    areas: dict | None   # the instance's area chain, for the reader's scope
    xml: str
    sha256: str


def instance_diagram(session: Session, instance_id: int) -> InstanceDiagram | None:
    """None when there is no such instance."""
    found = session.execute(select(ProcessInstance.areas, ProcessDefinition.bpmn_xml, ProcessDefinition.sha256)
                            .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
                            .where(ProcessInstance.id == instance_id)).first()
    return InstanceDiagram(*found) if found is not None else None


# --- loading an instance's history --------------------------------------------------

@dataclass
class Event:
    """One audit event as read (plain values, detached from any session)."""

    seq: int
    at: datetime
    actor_id: int | None
    kind: str
    element_id: str | None
    data: dict[str, Any]


@dataclass
class History:
    """Everything the instance page and its frames need, read in a few queries."""

    instance: ProcessInstance
    product_name: str | None
    producer_name: str | None
    producer_owner_id: int | None
    area_name: str                         # the instance's area: a product's commune
    definition_name: str
    definition_version: int
    events: list[Event]
    users: dict[int, str]                  # user id -> full name (actors, assignees)
    roles: dict[int, list[tuple[str, int | None]]]  # user id -> (role, area) held
    graph: DiagramGraph

    @property
    def migrated(self) -> bool:
        return any(event.kind == "migrated" for event in self.events)

    @property
    def started_version(self) -> int | None:
        started = next((e for e in self.events if e.kind == "started"), None)
        return started.data.get("version") if started else None


def load_history(session: Session, instance_id: int) -> History | None:
    """The instance, its events, the names and roles of everyone in them,
    and its diagram's graph; None when there is no such instance."""
    found = session.execute(
        select(ProcessInstance, Product.name, Producer.name, Producer.owner_user_id, Jurisdiction.name,
               ProcessDefinition.name, ProcessDefinition.version)
        .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
        .join(Jurisdiction, Jurisdiction.id == ProcessInstance.jurisdiction_id)
        .outerjoin(Product, Product.id == ProcessInstance.product_id)
        .outerjoin(Producer, Producer.id == Product.producer_id)
        .options(defer(ProcessInstance.state))  # the workflow state is never read here
        .where(ProcessInstance.id == instance_id)).first()
    if found is None:
        return None
    instance, product_name, producer_name, owner_id, area_name, definition_name, definition_version = found
    events = [Event(row.seq, as_utc(row.at), row.actor_id, row.kind, row.element_id, row.data or {})
              for row in session.execute(
                  select(AuditEvent.seq, AuditEvent.at, AuditEvent.actor_id, AuditEvent.kind,
                         AuditEvent.element_id, AuditEvent.data)
                  .where(AuditEvent.instance_id == instance_id).order_by(AuditEvent.seq))]
    user_ids = people_in(events)
    users, roles = {}, {}
    if user_ids:
        users = dict(session.execute(select(User.id, User.full_name).where(User.id.in_(user_ids))).all())
        for user_id, role, area in session.execute(
                select(RoleAssignment.user_id, RoleAssignment.role, RoleAssignment.jurisdiction_id)
                .where(RoleAssignment.user_id.in_(user_ids))
                .order_by(RoleAssignment.user_id, RoleAssignment.id)):
            roles.setdefault(user_id, []).append((role, area))
    return History(instance, product_name, producer_name, owner_id, area_name, definition_name,
                   definition_version, events, users, roles, graph_for(session, instance.definition_id))


def people_in(events: Iterable[Event]) -> set[int]:
    """Ids of everyone an event names: actors, assignees, previous holders."""
    ids = set()
    for event in events:
        if event.actor_id is not None:
            ids.add(event.actor_id)
        if event.kind in ("claimed", "unclaimed", "reassigned"):
            for key in ("assignee", "previous"):
                if isinstance(event.data.get(key), int):
                    ids.add(event.data[key])
    return ids


# --- timeline rows ---------------------------------------------------------------------

@dataclass
class TimelineRow:
    seq: int
    at: datetime
    kind: str
    element_id: str | None
    element_name: str | None
    actor_id: int | None
    actor_name: str | None   # None: the engine itself
    role: str | None         # role key the actor acted in
    step: int | None
    main: bool               # False: bookkeeping, shown only with "all events"
    summary: dict[str, Any] = field(default_factory=dict)
    # (section key, [(label, value)]): what the event changed or decided.
    sections: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # the event's data as recorded


def timeline_rows(history: History) -> list[TimelineRow]:
    graph, users = history.graph, history.users
    rows = []
    for event in history.events:
        data = event.data
        row = TimelineRow(
            seq=event.seq, at=event.at, kind=event.kind, element_id=event.element_id,
            element_name=graph.name(event.element_id), actor_id=event.actor_id,
            actor_name=users.get(event.actor_id) if event.actor_id is not None else None,
            role=_role_of(history, event), step=data.get("step") if isinstance(data.get("step"), int) else None,
            main=event.kind not in BOOKKEEPING_KINDS, data=data)
        _describe(row, event, graph, users)
        rows.append(row)
    return rows


def _role_of(history: History, event: Event) -> str | None:
    """The role the actor acted in: recorded with a completion; otherwise
    the producer's own role, else a role the user holds for one of the
    instance's areas, else any role the user holds (auditors, admins)."""
    if event.actor_id is None:
        return None
    if isinstance(event.data.get("role"), str):
        return event.data["role"]
    if event.actor_id == history.producer_owner_id:
        return "producer"
    held = history.roles.get(event.actor_id, [])
    areas = set((history.instance.areas or {}).values())
    for role, area in held:
        if area in areas:
            return role
    return held[0][0] if held else None


def _pairs(mapping: Any) -> list[tuple[str, Any]]:
    if not isinstance(mapping, dict):
        return [("", mapping)] if mapping not in (None, {}, []) else []
    return [(str(key), value) for key, value in mapping.items()]


def _describe(row: TimelineRow, event: Event, graph: DiagramGraph, users: dict[int, str]) -> None:
    """The row's summary and sections, per kind; unknown kinds show their data."""
    data, kind = event.data, event.kind
    sections = row.sections
    if kind == "started":
        row.summary = {"definition": data.get("definition"), "version": data.get("version")}
        sections.append(("start_data", _pairs(data.get("data"))))
    elif kind == "task_completed":
        form = data.get("form") if isinstance(data.get("form"), dict) else {}
        row.summary = {"name": data.get("name") or row.element_name, "form_key": data.get("form_key"),
                       # a review's verdict (a text); a recognition decision's `decision` is the act itself
                       "decision": form.get("decision") if isinstance(form.get("decision"), str) else None}
        row.element_name = data.get("name") or row.element_name
        sections.append(("form", _pairs(form)))
        delta = data.get("delta") if isinstance(data.get("delta"), dict) else {}
        if delta.get("set"):
            sections.append(("set", _pairs(delta["set"])))
        if delta.get("removed"):
            sections.append(("removed", [(str(name), None) for name in delta["removed"]]))
    elif kind in ("claimed", "unclaimed", "reassigned"):
        row.summary = {"assignee": users.get(data.get("assignee")), "previous": users.get(data.get("previous"))}
    elif kind == "gateway_decision":
        taken = [t for t in data.get("taken") or [] if isinstance(t, dict)]
        row.summary = {"to": [graph.name(t.get("to")) for t in taken]}
        sections.append(("taken", [(graph.name(t.get("to")), t.get("condition")) for t in taken]))
        if data.get("inputs"):
            sections.append(("inputs", _pairs(data["inputs"])))
    elif kind == "service_called":
        row.summary = {"handler": data.get("handler")}
        sections.append(("params", _pairs(data.get("params"))))
        sections.append(("result", _pairs(data.get("result"))))
    elif kind in BOOKKEEPING_KINDS:
        elements = [e for e in data.get("elements") or [] if isinstance(e, str)]
        row.summary = {"names": [graph.name(e) for e in elements]}
    elif kind == "migrated":
        row.summary = {"definition": data.get("definition"), "from_version": data.get("from_version"),
                       "to_version": data.get("to_version")}
        changed = data.get("changed_elements")
        if changed:
            sections.append(("changed_elements", _pairs(changed) if isinstance(changed, dict)
                             else [("", changed)]))
    elif kind == "finished":
        row.summary = {"stars": data.get("stars"), "end": row.element_name}
    elif kind == "cancelled":
        row.summary = {"reason": data.get("reason")}
    else:
        sections.append(("data", _pairs(data)))


# --- frames -------------------------------------------------------------------------------

class _Replay:
    """The diagram's state while walking the events (see the module doc)."""

    def __init__(self, graph: DiagramGraph):
        self.graph = graph
        self.done: Counter[str] = Counter()
        self.flows: Counter[str] = Counter()
        self.tokens: dict[str, list[int]] = {}      # flow id -> stamps of the completions that put them
        self.last_done: dict[str, int] = {}          # element -> stamp of its latest completion
        self.stamp = 0
        self.reached_ready: Counter[str] = Counter()  # user tasks reached by becoming ready, not yet done
        self.active: dict[str, list] = {}             # task id (or element) -> [element, holder id]
        self.acted: dict[str, list[int]] = {}         # user task -> who completed it, in order
        self.changed_done: set[str] = set()
        self.changed_flows: set[str] = set()
        self.changed_acted: set[str] = set()
        self.active_changed = False

    def reach(self, element: str) -> None:
        incoming = self.graph.incoming.get(element, [])
        waiting = [(stamps[-1], flow) for flow, _source in incoming if (stamps := self.tokens.get(flow))]
        if waiting and self.graph.types.get(element) in _JOINS and len(incoming) > 1:
            chosen = [flow for _stamp, flow in waiting]
        elif waiting:
            chosen = [max(waiting)[1]]
        else:
            sources = [(self.last_done[source], flow) for flow, source in incoming if source in self.last_done]
            chosen = [max(sources)[1]] if sources else []
        for flow in chosen:
            if self.tokens.get(flow):
                self.tokens[flow].pop()
            self.flows[flow] += 1
            self.changed_flows.add(flow)

    def complete(self, element: str, decided: list[str] | None = None) -> None:
        if self.reached_ready[element] > 0:
            self.reached_ready[element] -= 1
        else:
            self.reach(element)
        self.stamp += 1
        self.done[element] += 1
        self.last_done[element] = self.stamp
        self.changed_done.add(element)
        outgoing = self.graph.outgoing.get(element, [])
        if decided is not None:
            # The first flow to each chosen target (two flows between the same pair are not told apart).
            flows = [next((f for f, t in outgoing if t == target), None) for target in decided]
        elif self.graph.types.get(element) == "exclusiveGateway" and len(outgoing) > 1:
            flows = []  # no recorded decision (older history): the fallback in reach() decides
        else:
            flows = [f for f, _target in outgoing]
        for flow in flows:
            if flow is not None:
                self.tokens.setdefault(flow, []).append(self.stamp)

    def became_ready(self, element: str, task_id: str | None) -> None:
        self.reach(element)
        self.reached_ready[element] += 1
        self.active[task_id or element] = [element, None]
        self.active_changed = True

    def task_done(self, element: str, task_id: str | None, actor_id: int | None) -> None:
        self.complete(element)
        key = task_id if task_id in self.active else next(
            (k for k, (el, _holder) in self.active.items() if el == element), None)
        if key is not None:
            del self.active[key]
            self.active_changed = True
        if actor_id is not None:
            self.acted.setdefault(element, [])
            if actor_id not in self.acted[element]:
                self.acted[element].append(actor_id)
                self.changed_acted.add(element)

    def hold(self, element: str | None, task_id: str | None, holder: int | None) -> None:
        key = task_id if task_id in self.active else next(
            (k for k, (el, _h) in self.active.items() if el == element), None)
        if key is not None and self.active[key][1] != holder:
            self.active[key][1] = holder
            self.active_changed = True

    def clear_active(self) -> None:
        if self.active:
            self.active.clear()
            self.active_changed = True

    def delta(self, event: Event) -> dict:
        frame: dict[str, Any] = {"seq": event.seq, "kind": event.kind}
        if self.changed_done:
            frame["done"] = {el: self.done[el] for el in sorted(self.changed_done)}
        if self.changed_flows:
            frame["flows"] = {flow: self.flows[flow] for flow in sorted(self.changed_flows)}
        if self.changed_acted:
            frame["acted"] = {el: list(self.acted[el]) for el in sorted(self.changed_acted)}
        if self.active_changed:
            frame["active"] = [list(entry) for entry in self.active.values()]
        self.changed_done, self.changed_flows, self.changed_acted = set(), set(), set()
        self.active_changed = False
        return frame


_AUTOMATIC_ANNOTATIONS = ("gateway_decision", "service_called")


def frames(events: list[Event], graph: DiagramGraph) -> list[dict]:
    """One delta per event: {seq, kind, done?, flows?, acted?, active?}.
    `done` and `flows` give the new count of each element or flow that
    changed; `acted` the full list of who completed each changed user task;
    `active`, when it changed, the whole list of [element, holder id] ready
    now. Applying the deltas in order gives the state after each event."""
    replay = _Replay(graph)
    # An engine call records its gateway decisions and service calls before
    # the `engine_steps` list of everything automatic it completed. So that
    # the slider reveals them in order, each annotation completes the
    # elements of that list up to its own; the list event then completes
    # the rest. `pending` is that list, `pending_at` the list event's index.
    pending: list[str] | None = None
    pending_at: int | None = None
    result = []
    for index, event in enumerate(events):
        data, kind = event.data, event.kind
        if kind == "engine_steps":
            elements = pending if pending_at == index else [e for e in data.get("elements") or []
                                                             if isinstance(e, str)]
            for element in elements:
                replay.complete(element)
            pending, pending_at = None, None
        elif kind in _AUTOMATIC_ANNOTATIONS and event.element_id:
            if pending_at is None or pending_at < index:
                pending_at = _next_steps_list(events, index)
                pending = list(events[pending_at].data.get("elements") or []) if pending_at is not None else None
            decided = None
            if kind == "gateway_decision":
                decided = [t.get("to") for t in data.get("taken") or [] if isinstance(t, dict) and t.get("to")]
            if pending is not None and event.element_id in pending:
                position = pending.index(event.element_id)
                for element in pending[:position]:
                    replay.complete(element)
                del pending[:position + 1]
            replay.complete(event.element_id, decided)
        elif kind == "tasks_ready":
            elements = [e for e in data.get("elements") or [] if isinstance(e, str)]
            task_ids = data.get("task_ids") or [None] * len(elements)
            for element, task_id in zip(elements, task_ids):
                replay.became_ready(element, task_id)
        elif kind == "task_completed" and event.element_id:
            replay.task_done(event.element_id, data.get("task_id"), event.actor_id)
        elif kind in ("claimed", "reassigned"):
            replay.hold(event.element_id, data.get("task_id"), data.get("assignee"))
        elif kind == "unclaimed":
            replay.hold(event.element_id, data.get("task_id"), None)
        elif kind in ("finished", "cancelled"):
            replay.clear_active()
        result.append(replay.delta(event))
    return result


def _next_steps_list(events: list[Event], index: int) -> int | None:
    """Index of the `engine_steps` event that closes the engine call holding
    events[index], if the call recorded one."""
    for later in range(index + 1, len(events)):
        kind = events[later].kind
        if kind == "engine_steps":
            return later
        if kind not in _AUTOMATIC_ANNOTATIONS:
            return None
    return None


def frames_document(history: History) -> dict:
    """What the history viewer fetches: the frames, the names of the people
    in them, and the diagram they are drawn on."""
    users = {str(uid): name for uid, name in history.users.items()}
    return {"instance_id": history.instance.id, "process_id": history.instance.process_id,
            "definition": history.definition_name,
            "version": history.definition_version, "frames": frames(history.events, history.graph),
            "users": users}
