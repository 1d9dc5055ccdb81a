"""Everything a request could change in the database, as one comparable
value: `snapshot(world)` before and after a request shows that it changed
nothing (a refused intrusion, a GET, a refused cross-site post). Used by
tests/test_idor.py, tests/test_authorization_matrix.py and the web security
tests."""
from sqlalchemy import func, select

from storage.models import (
    AdminLogEntry,
    ApiToken,
    AuditCheckpoint,
    AuditEvent,
    Document,
    Enrolment,
    InboxTask,
    Incident,
    Notification,
    NotificationReceipt,
    ProcessDefinition,
    ProcessInstance,
    Producer,
    Product,
    RoleAssignment,
    TaskDraft,
    User,
)


def snapshot(world) -> dict:
    """Everything an intruder's request could change."""
    with world.db.transaction() as session:
        def rows(*columns, order=None):
            return [tuple(row) for row in session.execute(select(*columns).order_by(*(order or columns[:1])))]

        def count(model):
            return session.scalar(select(func.count()).select_from(model))
        return {
            "instances": rows(ProcessInstance.id, ProcessInstance.version, ProcessInstance.status,
                              ProcessInstance.definition_id, ProcessInstance.current_step),
            "audit_events": count(AuditEvent),
            "tasks": rows(InboxTask.id, InboxTask.assignee_id),
            "drafts": rows(TaskDraft.task_id, TaskDraft.user_id, TaskDraft.data),
            "documents": count(Document),
            "products": rows(Product.id, Product.name, Product.producer_id),
            "producers": count(Producer),
            "users": rows(User.id, User.is_active),
            "roles": rows(RoleAssignment.id, RoleAssignment.user_id, RoleAssignment.role,
                          RoleAssignment.jurisdiction_id),
            "tokens": rows(ApiToken.id, ApiToken.user_id, ApiToken.revoked_at),
            "receipts": rows(NotificationReceipt.id, NotificationReceipt.read_at),
            "definitions": rows(ProcessDefinition.id, ProcessDefinition.is_active),
            "admin_log": count(AdminLogEntry),
            "incidents": rows(Incident.id, Incident.status, Incident.attempts),
            "enrolments": count(Enrolment),
            "notifications": count(Notification),
            "checkpoints": count(AuditCheckpoint),
        }
