"""Two engine calls on one instance at once, where one runs a handler that
writes rows the other call changes too, end with at most one
ConcurrencyConflict (a completion that lost is tried again) and nothing
lost -- never a database deadlock (a 500).

The district officer completes the dossier check at the moment the worker
fires its 15-working-day escalation: the escalation handler flags the
instance's inbox rows, which the completion replaces. Every engine call
locks the instance row before a handler writes (execution.Execution
.lock_instance_row); in the other order PostgreSQL finds a deadlock."""
from __future__ import annotations

import threading
from datetime import timedelta

from audit import verification
from engine import calendar, execution
from engine.errors import ConcurrencyConflict
from handlers import registry
from testkit.cycle import Cycle

SEED = "Hồ tiêu Gio Linh"
STEPS = ("register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan", "support_record",
         "submit_dossier")


def test_an_escalation_and_a_completion_at_once_end_in_one_conflict(world, clock, monkeypatch):
    cycle = Cycle(world, SEED).start()
    for form_key in STEPS:
        cycle.do(form_key)
    task, officer = cycle.task("check_dossier"), cycle.actor("check_dossier")
    before = cycle.instance().version
    clock.now = calendar.add_working_days(clock.now, 15) + timedelta(hours=1)
    # The order in which the deadlock used to come: the escalation writes
    # its rows; the completion then writes its instance row (unless the
    # timer's call locked it first: then it waits for the timer's commit);
    # only then does the timer go on to write the instance row.
    both_there = threading.Barrier(2, timeout=20)
    completion_wrote = threading.Event()
    escalation = registry.get("escalate_overdue")
    real_escalate, real_save, real_write = escalation.function, execution.save, execution.write_instance

    def escalate_then_wait(context, **params):
        result = real_escalate(context, **params)
        both_there.wait()
        completion_wrote.wait(timeout=3)  # never set when the timer holds the instance row
        return result

    completion_saves = []

    def wait_then_save(call, status=None):
        if threading.current_thread().name == "completion" and not completion_saves:
            completion_saves.append(call)  # its second try (after a conflict) runs alone
            both_there.wait()
        return real_save(call, status)

    def write_then_tell(unit, instance, values, events, now):
        version = real_write(unit, instance, values, events, now)
        if threading.current_thread().name == "completion":
            completion_wrote.set()
        return version

    monkeypatch.setattr(escalation, "function", escalate_then_wait)
    monkeypatch.setattr(execution, "save", wait_then_save)
    monkeypatch.setattr(execution, "write_instance", write_then_tell)
    outcomes: dict[str, object] = {}

    def run(name, call):
        try:
            outcomes[name] = call()
        except Exception as err:  # noqa: BLE001 - the test reports whatever happened
            outcomes[name] = err

    threads = [threading.Thread(target=run, name="timer", args=("timer", lambda: world.fire_due_timers(
                   cycle.instance_id))),
               threading.Thread(target=run, name="completion", args=("completion", lambda: world.complete_task(
                   task.id, {"decision": "forward"}, officer)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    monkeypatch.undo()
    conflicts = [name for name, outcome in outcomes.items() if isinstance(outcome, ConcurrencyConflict)]
    others = {name: outcome for name, outcome in outcomes.items() if isinstance(outcome, Exception)
              and name not in conflicts}
    assert len(outcomes) == 2 and not others, outcomes
    # A completion that lost the race is tried again on the winner's version
    # (BpmnEngine.complete_task): only the timer's call may end in the
    # conflict, which the worker retries. Each call that ended well wrote once.
    assert set(conflicts) <= {"timer"}, outcomes
    assert cycle.instance().version == before + 2 - len(conflicts)
    assert verification.verify(world, [cycle.instance_id]).ok
