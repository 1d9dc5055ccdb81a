"""What a deadline timer does when it fires.

`escalate_overdue` (a non-interrupting timer on an officer's task): the
task's inbox row is flagged as escalated and the program managers of the
product's province are told. `deadline_expired` (an interrupting timer on
a producer's task): the producer is told the cycle ended for this year.
Both write notification rows (the outbox) in the engine call's transaction.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate
from sqlalchemy import select, update

from handlers.context import HandlerContext
from handlers.registry import handler
from storage.models import InboxTask, Notification

EXPIRED = {"dossier": "Sản phẩm “{product}” dừng chu trình OCOP năm nay vì quá hạn bổ sung, nộp lại hồ sơ.",
           "plan": "Sản phẩm “{product}” dừng chu trình OCOP năm nay vì quá hạn nộp lại phương án.",
           "idea": "Sản phẩm “{product}” dừng chu trình OCOP năm nay vì quá hạn nộp lại ý tưởng."}


class EscalateParams(Schema):
    task = fields.String(required=True, validate=validate.Length(min=1, max=100))


@handler("escalate_overdue", EscalateParams,
         "Báo quản lý chương trình của tỉnh khi một việc quá hạn / tell the province's program managers "
         "that a task is overdue",
         result={"notification_id": "id", "escalated_tasks": "inbox rows flagged"})
def escalate_overdue(context: HandlerContext, task: str) -> dict:
    instance = context.instance
    flagged = context.session.execute(
        update(InboxTask).where(InboxTask.instance_id == instance.id, InboxTask.element_id == task)
        .values(escalated_at=context.now)).rowcount
    name = context.session.scalar(select(InboxTask.name).where(
        InboxTask.instance_id == instance.id, InboxTask.element_id == task).limit(1)) or task
    product = instance.product
    notification = Notification(
        instance_id=instance.id, recipient_role="program_manager", producer_id=None,
        jurisdiction_id=instance.areas.get("province"), kind="task_overdue",
        message=f"Việc “{name}” của sản phẩm “{product.name if product else ''}” đã quá hạn xử lý.",
        reasons="", created_at=context.now)
    context.session.add(notification)
    context.session.flush()
    return {"notification_id": notification.id, "escalated_tasks": flagged}


class ExpiredParams(Schema):
    what = fields.String(required=True, validate=validate.OneOf(tuple(EXPIRED)))


@handler("deadline_expired", ExpiredParams,
         "Báo chủ thể: dừng chu trình năm nay vì quá hạn nộp lại / tell the producer the cycle ended "
         "because a resubmission was not made in time",
         result={"notification_id": "id"})
def deadline_expired(context: HandlerContext, what: str) -> dict:
    instance = context.instance
    product = instance.product
    notification = Notification(
        instance_id=instance.id, recipient_role="producer", producer_id=product.producer_id if product else None,
        jurisdiction_id=None, kind=f"{what}_expired", message=EXPIRED[what].format(product=product.name if product else ""),
        reasons="", created_at=context.now)
    context.session.add(notification)
    context.session.flush()
    return {"notification_id": notification.id}
