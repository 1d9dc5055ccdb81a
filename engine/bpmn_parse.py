"""SpiffWorkflow's parser as the diagram check drives it.

Three things the library does not do for us:
- it stops at the first error of a file: here every process (and its
  sub-processes) is parsed on its own, so each broken process reports;
- it parses a process depth first, one Python call per element along the
  flow (`TaskParser.parse_node` parses each target before connecting it), so
  a chain of about 480 elements exhausted the recursion limit: here the
  elements are parsed sinks first (`_SinksFirstProcessParser`), so each call
  finds its targets already parsed and returns at once (a long loop still
  recurses: see `parse_specs`);
- its messages are for programmers (cut-off sentences, `<Element ... at
  0x...>` reprs, several lines, no line number): `problem_from` rewrites
  them into plain one-line Problems in Vietnamese and English, named by the
  element of the uploaded tree.
"""
from __future__ import annotations

import re
import sys
import threading
from functools import lru_cache

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser, SpiffProcessParser

from engine.errors import Problem


class _SinksFirstProcessParser(SpiffProcessParser):
    """Parses the elements reachable from the start events in reverse
    depth-first order (successors before the element) before the library's
    own walk: its recursive walk then finds every target parsed already, so
    the depth of Python calls no longer grows with the length of a chain.
    The specs are the same objects the library would build; only the order
    in which they are made differs (start events keep document order: they
    are the walk's roots, taken in document order)."""

    def add_tasks(self):
        for node in self._sinks_first():
            self.parse_node(node)
        super().add_tasks()

    def _sinks_first(self) -> list:
        starts = self.xpath("./bpmn:startEvent")
        order, seen = [], set()
        for start in starts:
            if start.get("id") in seen:
                continue
            seen.add(start.get("id"))
            stack = [(start, iter(self._successors(start)))]
            while stack:
                node, following = stack[-1]
                for child in following:
                    if child.get("id") not in seen:
                        seen.add(child.get("id"))
                        stack.append((child, iter(self._successors(child))))
                        break
                else:
                    stack.pop()
                    # A boundary event is parsed by the activity it is attached to.
                    if not node.tag.endswith("}boundaryEvent"):
                        order.append(node)
        return order

    def _successors(self, node) -> list:
        node_id = node.get("id")
        targets = [self.get_node_by_id(flow.get("targetRef"))
                   for flow in self.get_outgoing_sequence_flows(node_id)]
        # Boundary events first: the library parses an activity's boundary
        # events before its outgoing flows, and the end events' order (the
        # process's EndJoin inputs) follows the walk.
        return [target for target in list(self.get_boundary_events(node_id)) + targets
                if target is not None and target.get("id")]


class Parser(SpiffBpmnParser):
    """SpiffWorkflow's spiff parser with the sinks-first process parser."""

    PROCESS_PARSER_CLASS = _SinksFirstProcessParser


@lru_cache(maxsize=64)
def supports(tag: str) -> bool:
    """Whether SpiffWorkflow has a parser for elements of this (Clark) tag."""
    return all(Parser(validator=None)._get_parser_class(tag))


def parse_specs(root: etree._Element, filename: str) -> tuple[dict, list[Problem]]:
    """Every executable process of the tree -> (spec, subprocess specs),
    and a Problem for each process SpiffWorkflow refuses (its first error:
    the library cannot go on inside a process after one).

    A chain is parsed without recursion, but a loop is not: the first of
    its elements parsed recurses around the whole loop (the library
    connects an element to its targets as it creates it, so something in a
    loop must be created first, in full). A loop longer than about 480
    elements therefore exhausts the default recursion limit; then the parse
    is done again with room (`_with_room`)."""
    specs, problems, deep = _parse_all(root, filename)
    if deep:
        specs, problems, _deep = _with_room(lambda: _parse_all(root, filename))
    return specs, problems


def _parse_all(root: etree._Element, filename: str) -> tuple[dict, list[Problem], bool]:
    """(specs, problems, whether the recursion limit was hit)."""
    # The tree is already validated, so the parser gets no validator of its own.
    parser = Parser(validator=None)
    try:
        parser.add_bpmn_xml(root, filename)
    except Exception as err:  # noqa: BLE001 - any library failure is the diagram's problem, told plainly
        return {}, [problem_from(err, root)], _recursed(err)
    specs: dict = {}
    problems: list[Problem] = []
    deep = False
    for process_id in parser.get_process_ids():
        try:
            specs[process_id] = (parser.get_spec(process_id), parser.get_subprocess_specs(process_id))
        except Exception as err:  # noqa: BLE001 - as above
            deep = deep or _recursed(err)
            found = problem_from(err, root, process_id)
            if not any((p.element_id, p.message) == (found.element_id, found.message) for p in problems):
                problems.append(found)
    return specs, problems, deep


def _recursed(err: Exception) -> bool:
    # SpiffWorkflow wraps what its task parser raises: a RecursionError
    # arrives as a ValidationException whose text is its repr.
    return isinstance(err, RecursionError) or "RecursionError" in str(err)


# Enough for a loop of about 5,000 elements (two frames per element). The
# limit is interpreter-wide while raised; the parse's own thread gets a
# large stack, and the other threads' Python frames are cheap on theirs
# (Python-to-Python calls use no C stack since 3.11).
ROOMY_RECURSION_LIMIT = 12_000
ROOMY_STACK_BYTES = 256 * 1024 * 1024
_room = threading.Lock()


def _with_room(parse):
    """Run `parse` in a thread with a large stack and the recursion limit
    raised, restoring both after (one at a time: the limit is global)."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = parse()
        except BaseException as err:  # noqa: BLE001 - handed back to the caller's thread
            outcome["error"] = err

    with _room:
        old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size()
        threading.stack_size(ROOMY_STACK_BYTES)
        try:
            worker = threading.Thread(target=run, name="bpmn-parse-with-room")
            sys.setrecursionlimit(max(old_limit, ROOMY_RECURSION_LIMIT))
            worker.start()
            worker.join()
        finally:
            sys.setrecursionlimit(old_limit)
            threading.stack_size(old_stack)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# --- SpiffWorkflow's messages in plain words --------------------------------------

_REPR = re.compile(r"<Element \{[^}]*\}(\w+) at 0x[0-9a-f]+>")
# (pattern of the library's message, Vietnamese, English): the groups of the
# pattern fill the {} of both texts.
_KNOWN = (
    (r"Multiple outgoing flows are not supported for tasks of type",
     "Phần tử có nhiều luồng ra, nhưng hệ thống này chỉ cho cổng (gateway) và sự kiện tách luồng: "
     "hãy đặt một cổng song song hoặc cổng rẽ nhánh sau nó",
     "The element has several outgoing flows, which this engine allows only on gateways and events: "
     "put a parallel or exclusive gateway after it"),
    (r"No start event found",
     "Không có sự kiện bắt đầu: hệ thống này cần một sự kiện bắt đầu trong mỗi quy trình và quy trình con",
     "No start event: this engine needs one in every process and sub-process"),
    (r"There is no support implemented for this task type",
     "Hệ thống này không chạy được loại phần tử này",
     "This kind of element is not supported by this engine"),
    (r"Data Store with name (.*) has no implementation",
     "Hệ thống này không chạy được kho dữ liệu '{}'",
     "Data store '{}' is not supported by this engine"),
    (r"Cannot resolve (data\w+Association)",
     "Hệ thống này không chạy được liên kết dữ liệu ({})",
     "A data association ({}) is not supported by this engine"),
    (r"Non-default exclusive outgoing sequence flow without condition",
     "Luồng ra của cổng rẽ nhánh không có điều kiện và không phải luồng mặc định",
     "An outgoing flow of an exclusive gateway has no condition and is not the default"),
    (r"The process '(.*?)' was not found",
     "Quy trình '{}' được gọi (callActivity) nhưng không có trong tệp",
     "Process '{}' is called (callActivity) but is not in the file"),
    (r"When looking for a task spec, we found two items.*\((.*)\)",
     "Một luồng ra của phần tử dẫn tới '{}', đây không phải một phần tử của quy trình",
     "An outgoing flow of the element leads to '{}', which is not an element of the process"),
    (r"A Service Task must have an operator",
     "Tác vụ dịch vụ không chỉ định bộ xử lý (spiffworkflow:serviceTaskOperator)",
     "The service task names no handler (spiffworkflow:serviceTaskOperator)"),
    (r"Unknown Time Specification",
     "Hẹn giờ không có timeDate, timeDuration hay timeCycle",
     "The timer has no timeDate, timeDuration or timeCycle"),
    (r"Duplicate process ID: (.*)",
     "Mã quy trình '{}' xuất hiện hai lần",
     "Process id '{}' appears twice"),
    (r"Process (.*) is not executable",
     "Quy trình '{}' không được đánh dấu là thực thi được (isExecutable)",
     "Process '{}' is not marked executable (isExecutable)"),
    (r"RecursionError|maximum recursion depth",
     "Sơ đồ lồng nhau hoặc có vòng lặp quá dài để engine đọc được: hãy chia thành các quy trình con",
     "The diagram nests or loops too deeply for the engine to read: split it into sub-processes"),
)


def problem_from(err: Exception, root: etree._Element, process_id: str | None = None) -> Problem:
    """One plain Problem for an exception SpiffWorkflow raised while
    parsing, named by the element of `root` it concerns."""
    raw = str(err.args[0]) if err.args else str(err)
    if not isinstance(err, SpiffWorkflowException):
        raw = f"{type(err).__name__}: {raw}"
    element_id = (getattr(err, "id", None) or None) if isinstance(err, ValidationException) else None
    element = _by_id(root, element_id) if element_id else None
    if element is None and process_id:
        element = _by_id(root, process_id)
    vi, en = _plain(raw)
    return Problem(vi, element.get("id") if element is not None else element_id,
                   element.sourceline if element is not None else None, "bpmn", en,
                   element.get("name") if element is not None else None)


def _plain(raw: str) -> tuple[str, str]:
    for pattern, vi, en in _KNOWN:
        match = re.search(pattern, raw)
        if match:
            groups = [_one_line(g) for g in match.groups()]
            return vi.format(*groups), en.format(*groups)
    text = _one_line(raw)
    return f"SpiffWorkflow không đọc được phần tử này: {text}", f"SpiffWorkflow cannot read this element: {text}"


def _one_line(text: str) -> str:
    """No reprs, no line breaks, no trailing '. ' the library appends."""
    text = _REPR.sub(lambda m: m.group(1), text or "")
    return " ".join(text.split()).rstrip(". ")[:300]


def _by_id(root: etree._Element, element_id: str):
    found = root.xpath("//*[@id=$id]", id=element_id)
    return found[0] if found else None
