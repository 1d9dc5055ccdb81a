"""Diagram expressions and scripts, evaluated without Python's eval/exec.

SpiffWorkflow evaluates gateway conditions, service-task parameters and
script tasks with plain eval/exec; a restricted `__builtins__` can be
escaped. Here they go through simpleeval with a small allow-list instead:

- an *expression* is one of: names of process variables, literals,
  and/or/not, comparisons, arithmetic, `x if c else y`, subscripts
  (`rank['average']`), list/tuple/dict literals, and calls of the functions
  in FUNCTIONS. No attribute access, no comprehensions, no dunder names.
- a *script* is lines of `name = expression` (or `name += expression`).

`check_expression` / `check_script` refuse anything else *before* deploy;
the evaluator refuses it again at run time.
"""
from __future__ import annotations

import ast
import re
import threading
from datetime import timedelta
from functools import lru_cache

from simpleeval import EvalWithCompoundTypes, NumberTooHigh, SimpleEval, safe_mult
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine import clock
from engine.calendar import add_working_days, round_closing


def working_days_from_now(days) -> str:
    """For timer events: the moment `days` working days after the engine call's
    time (engine/calendar.py), as the ISO text a BPMN timeDate takes."""
    return add_working_days(clock.now(), int(days)).isoformat()


def days_from_now(days) -> str:
    """For timer events: `days` calendar days after the engine call's time."""
    return (clock.now() + timedelta(days=int(days))).isoformat()


def round_closing_time() -> str:
    """For timer events: when the provincial round a dossier forwarded now
    belongs to closes (30/4 or 30/10, engine/calendar.py)."""
    return round_closing(clock.now()).isoformat()


MAX_EXPRESSION_LENGTH = 2000
MAX_SCRIPT_LENGTH = 20_000
# Nesting of an expression's syntax tree: simpleeval recurses once per
# level, so a chain like `- - - ... 1` would exhaust Python's stack.
MAX_DEPTH = 40
# Bits of an integer product: a script squaring a number line after line
# would otherwise grow it without end (`**` and `<<` are refused anyway).
MAX_INT_BITS = 4096
MAX_ROUND_DIGITS = 15
_SCALARS = (str, int, float, bool, type(None))


class ExpressionError(ValueError):
    """An expression or script outside the allowed language."""


def _str(value) -> str:
    """str() of a number or a text only: the text of a nested list can be
    far larger than the list (`str([[0] * 99999] * 99999)`)."""
    if not isinstance(value, _SCALARS):
        raise ExpressionError("str() takes a number or a text")
    return str(value)


def _sum(values):
    """sum() of a list of numbers only (a start value of [] would join lists)."""
    if not isinstance(values, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ExpressionError("sum() takes a list of numbers")
    return sum(values)


def _round(number, ndigits=None):
    """round() to at most MAX_ROUND_DIGITS places either side of the point
    (round(5, -10**9) computes 10**(10**9))."""
    if ndigits is None:
        return round(number)
    if not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS:
        raise ExpressionError(f"round() takes at most {MAX_ROUND_DIGITS} digits")
    return round(number, ndigits)


def _mult(a, b):
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise NumberTooHigh(f"a product of more than {MAX_INT_BITS} bits")
    return safe_mult(a, b)


def _mod(a, b):
    """`%` of numbers only: on a text it is printf formatting, and
    '%0999999999d' % 1 asks for a gigabyte."""
    if isinstance(a, (str, bytes)):
        raise ExpressionError("'%' formatting of a text is not allowed")
    return a % b


FUNCTIONS = {
    "round_closing_time": round_closing_time,
    "working_days_from_now": working_days_from_now,
    "days_from_now": days_from_now,
    "min": min,
    "max": max,
    "len": len,
    "round": _round,
    "int": int,
    "float": float,
    "str": _str,
    "abs": abs,
    "sum": _sum,
}

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression, ast.Expr, ast.Constant, ast.Name, ast.Load,
    ast.BoolOp, ast.And, ast.Or,
    ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Is, ast.IsNot,
    ast.IfExp, ast.Subscript, ast.Slice,
    ast.List, ast.Tuple, ast.Dict,
    ast.Call,
)


def _depth(tree: ast.AST) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _check_tree(tree: ast.AST, source: str) -> None:
    if _depth(tree) > MAX_DEPTH:
        raise ExpressionError(f"expression nested more than {MAX_DEPTH} levels deep in '{source[:200]}'")
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"'{type(node).__name__}' is not allowed in '{source}'")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ExpressionError(f"name '{node.id}' is not allowed in '{source}'")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                called = ast.unparse(node.func)
                raise ExpressionError(f"calling '{called}' is not allowed in '{source}'")
            if node.keywords:
                raise ExpressionError(f"keyword arguments are not allowed in '{source}'")
        if isinstance(node, ast.Constant) and isinstance(node.value, (bytes, complex)):
            raise ExpressionError(f"constant {node.value!r} is not allowed in '{source}'")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) \
                and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            raise ExpressionError(f"'%' formatting of a text is not allowed in '{source}'")


def _fold_constants(tree: ast.AST, source: str) -> None:
    """Deploy time: evaluate every part of an expression that reads no
    process variable (`'x' * 10000000000`, `1 / 0`), so what can only fail
    fails now, with the diagram, rather than in a running instance."""
    def constant(node) -> bool:
        calls = {id(call.func) for call in ast.walk(node) if isinstance(call, ast.Call)}
        return not any(isinstance(name, ast.Name) and id(name) not in calls for name in ast.walk(node))

    pending = [tree.body if isinstance(tree, ast.Expression) else tree]
    while pending:
        node = pending.pop()
        if not isinstance(node, ast.expr) or isinstance(node, (ast.Constant, ast.Slice)):
            continue  # contexts and operators are no values; a slice is evaluated with its subscript
        if not constant(node):
            pending.extend(ast.iter_child_nodes(node))
            continue
        try:
            _Evaluator().eval(source, previously_parsed=node)
        except Exception as err:  # noqa: BLE001 - whatever it is, it would fail at run time too
            raise ExpressionError(f"'{ast.unparse(node)[:200]}' cannot be evaluated: "
                                  f"{type(err).__name__}: {str(err)[:200]}") from None


@lru_cache(maxsize=1024)
def parse_expression(source: str) -> ast.expr:
    """Parse and check one expression; cached, diagrams repeat them a lot."""
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as err:
        raise ExpressionError(f"syntax error in '{source}': {err.msg}") from None
    except (ValueError, RecursionError, MemoryError) as err:  # a NUL; nesting past the parser's limits
        raise ExpressionError(f"cannot parse '{source[:200]}': {type(err).__name__}") from None
    _check_tree(tree, source)
    return tree.body


@lru_cache(maxsize=256)
def parse_script(source: str) -> tuple[tuple[str, str, ast.expr], ...]:
    """Parse a script into (variable, operator, expression) assignments."""
    if len(source) > MAX_SCRIPT_LENGTH:
        raise ExpressionError(f"script longer than {MAX_SCRIPT_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="exec")
    except SyntaxError as err:
        raise ExpressionError(f"syntax error in script line {err.lineno}: {err.msg}") from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise ExpressionError(f"cannot parse the script: {type(err).__name__}") from None
    steps = []
    for statement in tree.body:
        line = ast.get_source_segment(source.strip(), statement) or ""
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                and isinstance(statement.targets[0], ast.Name):
            target, operator, value = statement.targets[0].id, "=", statement.value
        elif isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name) \
                and isinstance(statement.op, (ast.Add, ast.Sub)):
            operator = "+=" if isinstance(statement.op, ast.Add) else "-="
            target, value = statement.target.id, statement.value
        else:
            raise ExpressionError(f"script lines must be 'name = expression', not '{line}'")
        if target.startswith("_"):
            raise ExpressionError(f"variable '{target}' is not allowed in '{line}'")
        _check_tree(value, line)
        steps.append((target, operator, value))
    return tuple(steps)


def check_expression(source: str) -> None:
    _fold_constants(parse_expression(source), source)


def check_script(source: str) -> None:
    for _target, _operator, value in parse_script(source):
        _fold_constants(value, source)


def inputs_of(source: str, names: dict) -> dict:
    """The values an expression read, for the record of why a gateway chose
    its flow: `{"district_rank['stars']": 4, "max_resubmissions": 3}`.
    Subscripts with constant keys are followed; a name that is missing
    (or a key that is) is recorded as None."""
    inputs: dict = {}
    for label, name, path in _input_paths(source):
        value = names.get(name)
        for key in path:
            value = _item(value, key)
        inputs[label] = value
    return inputs


@lru_cache(maxsize=1024)
def _input_paths(source: str) -> tuple[tuple[str, str, tuple], ...]:
    """What inputs_of reads, per expression (a diagram has a few dozen; each
    gateway passed reads them again): (label, name, keys below the name)."""
    paths = []
    inside: set[int] = set()
    for node in ast.walk(parse_expression(source)):
        if id(node) in inside or not isinstance(node, (ast.Subscript, ast.Name)):
            continue
        path, inner = [], node
        while isinstance(inner, ast.Subscript) and isinstance(inner.slice, ast.Constant):
            path.append(inner.slice.value)
            inside.add(id(inner.value))
            inner = inner.value
        if not isinstance(inner, ast.Name) or (isinstance(node, ast.Name) and node.id in FUNCTIONS):
            continue
        inside.add(id(inner))
        paths.append((ast.unparse(node), inner.id, tuple(reversed(path))))
    return tuple(paths)


def _item(container, key):
    if isinstance(container, dict):
        return container.get(key)
    if isinstance(container, (list, tuple)) and isinstance(key, int) and -len(container) <= key < len(container):
        return container[key]
    return None


class _Evaluator(EvalWithCompoundTypes):
    """simpleeval with only the nodes _check_tree allows (no comprehensions,
    no attribute access), and the FUNCTIONS allow-list."""

    def __init__(self):
        super().__init__(functions=FUNCTIONS)
        self.nodes = {k: v for k, v in self.nodes.items() if issubclass(k, _ALLOWED_NODES)}
        self.operators = {**self.operators, ast.Mult: _mult, ast.Mod: _mod}

    def _check_disallowed_items(self, item):
        """simpleeval's check that no result holds a module or a forbidden
        function, visiting each object once: its own walk follows every
        reference, so `[[0] * 99999] * 99999` would cost 10**10 steps."""
        seen: set[int] = set()
        stack = [item]
        while stack:
            value = stack.pop()
            if isinstance(value, _SCALARS) or id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, (list, tuple, set, frozenset)):
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
            else:
                super()._check_disallowed_items(value)


_local = threading.local()


def _evaluator(names: dict) -> SimpleEval:
    # One evaluator per thread, reused: building one costs more than most
    # evaluations. Only `names` changes between calls.
    evaluator = getattr(_local, "evaluator", None)
    if evaluator is None:
        evaluator = _local.evaluator = _Evaluator()
    evaluator.names = names
    return evaluator


def evaluate(source: str, names: dict):
    """Evaluate an expression against process variables."""
    return _evaluator(names).eval(source, previously_parsed=parse_expression(source))


def run_script(source: str, data: dict) -> None:
    """Run a script: each line assigns one process variable in `data`."""
    for target, operator, value in parse_script(source):
        result = _evaluator(data).eval(source, previously_parsed=value)
        if operator == "+=":
            result = data[target] + result
        elif operator == "-=":
            result = data[target] - result
        data[target] = result


class SafeEnvironment(BasePythonScriptEngineEnvironment):
    """The environment SpiffWorkflow's script engine calls for conditions,
    parameters and scripts: the allow-list evaluator instead of eval/exec."""

    def evaluate(self, expression, context, external_context=None):
        names = dict(context)
        if external_context:
            names.update(external_context)
        return evaluate(expression, names)

    def execute(self, script, context, external_context=None):
        run_script(script, context)
        return True


class SafeScriptEngine(PythonScriptEngine):
    """Script engine of every workflow the app runs. Service tasks go to
    `service_caller(task, handler_name, params)`: the engine's dispatch to
    the handler registry, which carries the open database transaction.
    Evaluated values pass through `value_check` when given."""

    def __init__(self, service_caller=None, value_check=None):
        super().__init__(environment=SafeEnvironment())
        self.service_caller = service_caller
        # value_check(task, expression, value) -> value: the engine's look at
        # what an expression gave before SpiffWorkflow uses it (a timer's
        # value: Execution.check_timer).
        self.value_check = value_check

    def evaluate(self, task, expression, external_context=None):
        value = super().evaluate(task, expression, external_context)
        return value if self.value_check is None else self.value_check(task, expression, value)

    def validate(self, expression):
        check_expression(expression)

    def call_service(self, task, operation_name=None, operation_params=None, **kwargs):
        if self.service_caller is None:
            raise RuntimeError("service tasks cannot run outside the engine")
        return self.service_caller(task, operation_name, operation_params or {})


# The messages of ExpressionError above in Vietnamese, for the diagram
# check's problems (engine/diagram.py); kept here, beside the messages.
_VIETNAMESE = (
    (r"expression nested more than (\d+) levels deep in (.*)", "biểu thức lồng nhau quá {0} cấp trong {1}"),
    (r"'(\w+)' is not allowed in (.*)", "cú pháp '{0}' không được phép trong {1}"),
    (r"name '(.*?)' is not allowed in (.*)", "tên '{0}' không được phép trong {1}"),
    (r"calling '(.*?)' is not allowed in (.*)", "không được gọi '{0}' trong {1}"),
    (r"keyword arguments are not allowed in (.*)", "không được dùng đối số có tên trong {0}"),
    (r"constant (.*?) is not allowed in (.*)", "hằng số {0} không được phép trong {1}"),
    (r"'%' formatting of a text is not allowed in (.*)", "không được định dạng văn bản bằng '%' trong {0}"),
    (r"'(.*?)' cannot be evaluated: (.*)", "không tính được '{0}': {1}"),
    (r"expression longer than (\d+) characters", "biểu thức dài hơn {0} ký tự"),
    (r"syntax error in script line (\d+): (.*)", "lỗi cú pháp ở dòng {0} của kịch bản: {1}"),
    (r"syntax error in (.*?): (.*)", "lỗi cú pháp trong {0}: {1}"),
    (r"cannot parse the script: (.*)", "không đọc được kịch bản: {0}"),
    (r"cannot parse (.*?): (.*)", "không đọc được {0}: {1}"),
    (r"script longer than (\d+) characters", "kịch bản dài hơn {0} ký tự"),
    (r"script lines must be 'name = expression', not (.*)",
     "mỗi dòng kịch bản phải có dạng 'tên = biểu thức', không phải {0}"),
    (r"variable '(.*?)' is not allowed in (.*)", "biến '{0}' không được phép trong {1}"),
)


def vietnamese(err: ExpressionError) -> str:
    """The Vietnamese of an ExpressionError's message (the English one when
    no pattern fits: a message added above without its Vietnamese)."""
    message = str(err)
    for pattern, vi in _VIETNAMESE:
        match = re.fullmatch(pattern, message, re.DOTALL)
        if match:
            return vi.format(*match.groups())
    return message
