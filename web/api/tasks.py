"""The inbox through the JSON API: listing the caller's tasks, claiming and
giving them back, completing them with their form data.

A completion is BpmnEngine.complete_task, as for the task page's form;
the task's drafts go with its inbox row (a foreign key, ON DELETE CASCADE).
"""
from __future__ import annotations

from datetime import datetime

from flask import request

from engine.errors import NotAllowed, UnknownTask
from engine.forms import FORMS, form_schema
from programme import records
from programme.inbox import PAGE_SIZE, InboxFilter, completed_lately, counts, list_tasks
from storage.db import as_utc
from storage.models import InboxTask
from web.api import api
from web.api.authentication import caller
from web.api.bodies import dump, json_body
from web.api.errors import ApiError
from web.api.openapi import documented
from web.api.schemas import StepResultSchema, TaskEnvelopeSchema, TaskListSchema, TaskQuerySchema
from web.context import bpmn_engine, reading


def task_body(task: InboxTask, product, producer, commune, now: datetime) -> dict:
    """A task row (with its product, producer and commune, each maybe None) as TaskSchema reads it."""
    return {
        "id": task.id, "instance_id": task.instance_id, "name": task.name, "element_id": task.element_id,
        "form_key": task.form_key, "step": task.step, "role": task.role,
        "jurisdiction_id": task.jurisdiction_id, "assignee_id": task.assignee_id,
        "created_at": task.created_at, "due_at": task.due_at,
        "overdue": task.due_at is not None and as_utc(task.due_at) < now,
        "product_id": task.product_id, "product_name": product.name if product else None,
        "group_code": product.group_code if product else None,
        "producer_name": producer.name if producer else None,
        "commune_name": commune.name if commune else None,
    }


def _on_task(task_id: str, call):
    """An engine call on a task. The engine answers an unknown task (404)
    and one the caller may not act on (403); the latter becomes 404 when the
    caller may not even see its instance, so another area's task ids look
    like missing ones. Checked only then: one who may act may also see, so
    the usual call reads the task once, inside the engine's transaction."""
    try:
        return call()
    except UnknownTask:
        raise ApiError("not_found", f"no task {task_id}") from None  # worded as for another area's task
    except NotAllowed:
        with reading() as session:
            if records.readable_task(session, caller(), task_id) is None:
                raise ApiError("not_found", f"no task {task_id}")
        raise


def _task_response(task_id: str):
    now = bpmn_engine().clock()
    with reading() as session:
        row = records.task_row(session, task_id)
        if row is None:
            raise ApiError("not_found", f"no task {task_id}")
        return dump(TaskEnvelopeSchema, {"task": task_body(*row, now)})


@api.get("/tasks")
@documented("The caller's inbox, filtered and paged, with quick-filter counts", "tasks",
            TaskListSchema, query=TaskQuerySchema, errors=(401, 422))
def list_inbox():
    """Only tasks the caller may act on: its roles' tasks in its areas, and
    its own products' tasks for producers."""
    fltr = InboxFilter(**TaskQuerySchema().load(request.args.to_dict()))
    now = bpmn_engine().clock()
    with reading() as session:
        listed = list_tasks(session, caller(), fltr, now)
        tallies = counts(session, caller(), now)
        tasks = [task_body(*row, now) for row in listed.rows]
    return dump(TaskListSchema, {"tasks": tasks, "total": listed.total, "page": fltr.page,
                                 "page_size": PAGE_SIZE, "counts": tallies})


@api.post("/tasks/<task_id>/claim")
@documented("Claim a task: colleagues of the area then cannot complete it", "tasks",
            TaskEnvelopeSchema, errors=(401, 403, 404, 409))
def claim_task(task_id: str):
    _on_task(task_id, lambda: bpmn_engine().claim(task_id, caller()))
    return _task_response(task_id)


@api.post("/tasks/<task_id>/unclaim")
@documented("Give a claimed task back to the area (its assignee or a supervisor)", "tasks",
            TaskEnvelopeSchema, errors=(401, 403, 404, 409))
def unclaim_task(task_id: str):
    _on_task(task_id, lambda: bpmn_engine().unclaim(task_id, caller()))
    return _task_response(task_id)


@api.post("/tasks/<task_id>/complete")
@documented("Complete a task with its form data", "tasks", StepResultSchema,
            body=lambda: {"oneOf": [form_schema(key) for key in FORMS]}, errors=(401, 403, 404, 409, 422, 502))
def complete_task(task_id: str):
    """The body is the task's form (its form_key names which); invalid data
    answers 422 with per-field messages and changes nothing."""
    data = json_body()
    try:
        result = _on_task(task_id, lambda: bpmn_engine().complete_task(task_id, data, caller()))
    except ApiError as err:
        # A task completed moments ago by someone else: this request lost
        # the race (409, as when it read the task before the winner's commit).
        if err.code == "not_found":
            with reading() as session:
                if completed_lately(session, caller(), task_id):
                    raise ApiError("conflict", "Việc này vừa được hoàn thành; lần gửi này không được lưu / "
                                   "this task was completed just now; this submission was not saved") from None
        raise
    return dump(StepResultSchema, result)
