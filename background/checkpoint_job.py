"""The `checkpoint` job: sign the history heads once a day (audit/checkpoints.py).

Skipped when no signing key is configured, and when nothing changed since
the last checkpoint (the same root would be signed again).
"""
from __future__ import annotations

import logging

from audit import checkpoints
from background.jobs import job
from engine.bpmn_engine import BpmnEngine

log = logging.getLogger(__name__)


@job("checkpoint", every_seconds=24 * 3600, description="Sign every instance's history head (daily)",
     counts="checkpoints signed")
def issue_checkpoint(engine: BpmnEngine) -> int:
    try:
        key = checkpoints.load_private_key(checkpoints.key_path())
    except (OSError, ValueError) as err:
        log.warning("no checkpoint signed: %s", err)
        return 0
    with engine.db.transaction() as session:
        latest = checkpoints.latest(session)
        checkpoint = checkpoints.issue(session, key, engine.clock())
        if latest is not None and latest.root_hash == checkpoint.root_hash:
            session.rollback()  # nothing changed: do not sign the same root twice
            return 0
    return 1
