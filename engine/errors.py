"""Errors a user (or a diagram author) can cause, one type each, so the web
layer can answer each with the right status and message."""
from __future__ import annotations

from dataclasses import dataclass


class OcopError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass
class Problem:
    """One thing wrong with a diagram, named by element (id and name) and
    line, in plain words: `message` in Vietnamese (the app's first
    language), `message_en` in English. Each is one line; the web shows the
    one of the reader's locale, the CLI both."""

    message: str
    element_id: str | None = None
    line: int | None = None
    layer: str = "lint"  # xml | bpmn | lint | dryrun (programme.definitions: the dry run before a deploy)
    message_en: str = ""
    element_name: str | None = None

    def text(self, language: str = "vi") -> str:
        """The message in `language` ('vi' or 'en'); Vietnamese otherwise."""
        return (self.message_en or self.message) if language == "en" else self.message

    def where(self, language: str = "vi") -> str:
        """'element 'id' "name", line 12' (or its Vietnamese), '' if unknown."""
        english = language == "en"
        parts = []
        if self.element_id:
            label = "element" if english else "phần tử"
            parts.append(f"{label} '{self.element_id}'"
                         + (f' "{self.element_name}"' if self.element_name else ""))
        if self.line:
            parts.append(f"{'line' if english else 'dòng'} {self.line}")
        return ", ".join(parts)

    def as_dict(self, language: str = "vi") -> dict:
        """For JSON: `message` in `language`, both languages kept."""
        return {"message": self.text(language), "message_vi": self.message,
                "message_en": self.message_en or self.message, "element_id": self.element_id,
                "element_name": self.element_name, "line": self.line, "layer": self.layer}

    def __str__(self) -> str:
        """One line, Vietnamese then English: what the CLI and logs print."""
        def one(language: str) -> str:
            where = self.where(language)
            return self.text(language) + (f" ({where})" if where else "")
        english = f" / {one('en')}" if self.message_en and self.message_en != self.message else ""
        return f"[{self.layer}] {one('vi')}{english}"


class DiagramError(OcopError):
    """The diagram cannot be deployed; `problems` says every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class UnknownTask(OcopError):
    def __init__(self, task_id: str):
        super().__init__(f"No ready task with id {task_id}")


class TaskNotReady(OcopError):
    def __init__(self, task_id: str, state: str):
        super().__init__(f"Task {task_id} is not ready (state {state})")


class FormInvalid(OcopError):
    """Submitted data does not fit the task's form; `errors` maps field -> messages."""

    def __init__(self, form_key: str, errors: dict):
        self.form_key = form_key
        self.errors = errors
        super().__init__(f"Form '{form_key}' is invalid: {errors}")


class NotAllowed(OcopError):
    """The actor lacks the role for this task in this area (or does not own the product)."""


class ClaimedByOther(OcopError):
    """Someone else has claimed the task."""


class ConcurrencyConflict(OcopError):
    """Another change to the same instance committed first; nothing was written."""

    def __init__(self, instance_id: int):
        self.instance_id = instance_id
        super().__init__(
            f"Instance {instance_id} was changed by someone else at the same time; "
            "nothing was saved. Reload and try again."
        )


class RegistrationClosed(OcopError):
    """No outreach campaign has opened idea registration for this area today."""


class AlreadyInCycle(OcopError):
    """The product already takes part in this year's cycle."""


class NoActiveDefinition(OcopError):
    """No diagram is deployed and active for this province."""


class ServiceTaskFailed(OcopError):
    """A service-task handler refused its parameters or failed. The attempt
    is rolled back; the engine then keeps the call's work with the task waiting in
    ERROR and opens an incident (`element` names the task, when known)."""

    def __init__(self, message: str, element: str | None = None, handler: str | None = None):
        super().__init__(message)
        self.element = element
        self.handler = handler


class InstanceNotRunning(OcopError):
    pass


class ProcessRefused(OcopError):
    """The deployed diagram makes the engine refuse to go on (a task whose
    lane is no role, an expression that cannot be evaluated, a loop that
    never exits, ...). Nothing of the call is written; the portal shows
    the message (Vietnamese first) instead of failing. `element` names the
    diagram element where it happened, when known."""

    def __init__(self, message: str, element: str | None = None):
        super().__init__(message)
        self.element = element


class StepBudgetExhausted(ProcessRefused):
    """One engine call ran more automatic steps than its budget (a loop whose
    exit condition never becomes true): rolled back. `element` is the
    element the call ran most often -- where it looped -- and `loop` the
    elements it ran most, most often first."""

    def __init__(self, budget: int, loop: list[str]):
        self.budget, self.loop = budget, loop
        where = ", ".join(loop)
        super().__init__(
            f"Quy trình lặp mãi không thoát tại {where}: đã chạy quá {budget} bước tự động trong một lần "
            f"xử lý nên không có gì được lưu; hãy báo quản lý chương trình sửa sơ đồ / "
            f"the process loops without end at {where}: more than {budget} automatic steps in one call, "
            f"nothing was saved",
            loop[0] if loop else None)


class TimerValueInvalid(ServiceTaskFailed):
    """A timer's value, evaluated at run time, is not a date, duration or
    cycle in ISO 8601 (e.g. 'P1X2'). Handled like a failing service task:
    the call is kept, the timer is set aside (it never fires by itself) and
    an incident is opened on it, for a program manager to retry or skip."""

    def __init__(self, element: str, value, reason_vi: str, reason_en: str):
        self.value = value
        super().__init__(
            f"{element}: giá trị hẹn giờ {value!r} không dùng được ({reason_vi}); hẹn giờ bị tạm gác / "
            f"timer value {value!r} cannot be used ({reason_en}); the timer is set aside", element, None)
