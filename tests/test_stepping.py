"""The engine drives a workflow exactly as SpiffWorkflow does
(engine/stepping.py): twin workflows of the bundled diagrams -- SpiffWorkflow's
own, stepped by its do_engine_steps, and the engine's EngineWorkflow, stepped
by run_engine_steps -- get the same user-task completions (returns,
parallel branches, timers, the end); they must run the same tasks in the
same order and hold the same tree (tasks, states, data) after every step."""
import json
import random
from datetime import datetime, timezone

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine import clock, diagram
from engine.expressions import SafeScriptEngine
from engine.forms import validate_form
from engine.samples import SampleDecider, levels_for_total
from engine.stepping import EngineWorkflow, run_engine_steps
from handlers.council_rules import council_result
from handlers.ranking import council_average, recognised_stars, stars_for_score
from programme.definitions import NATIONAL_DIAGRAM, TWO_TIER_DIAGRAM
from testkit.cycle import VALID, returned

START = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)
ROUND_PASSED = datetime(2026, 11, 1, 8, tzinfo=timezone.utc)


def service(task, name, params) -> str:
    """Deterministic service results (the ranking computed; the others' content
    does not steer the diagrams)."""
    values = {key: param["value"] for key, param in params.items()}
    if name == "council_panel":
        present = set(values["session"]["present"])
        return json.dumps({str(m["user_id"]): m for m in values["session"]["members"] if m["user_id"] in present})
    if name == "rank_council":
        return json.dumps(council_result(values["criteria_set"], values["level"], values["max_stars"],
                                         values["panel"], values["sheets"], values["spread_limit"]))
    if name == "rank_product":
        stars = stars_for_score(council_average(values["sheets"]))
        return json.dumps({"average": council_average(values["sheets"]), "stars": stars,
                           "recognised_stars": recognised_stars(stars, values["max_stars"])})
    if name == "issue_certificate":  # what the diagram reads of the certificate it issues
        return json.dumps({"certificate_id": 1, "certificate_number": "OCOP-QT-2026-000001",
                           "valid_until": "2029-11-20"})
    if name == "join_round":
        return json.dumps({"round_id": 1, "round_label": "Đợt 2 năm 2026", "decide_by": "2026-12-30"})
    return json.dumps({"ok": True})


def tree(workflow: BpmnWorkflow) -> list:
    """The task tree without what differs between twins (random task ids,
    state-change times): depth, element, state, data and internal data (a
    multi-instance task's merged children named by their place in the tree)."""
    tasks = []

    def collect(task, depth):
        tasks.append((task, depth))
        for child in task.children:
            collect(child, depth + 1)
    collect(workflow.task_tree, 0)
    place = {str(task.id): index for index, (task, _depth) in enumerate(tasks)}

    def internal(task):
        data = dict(task.internal_data)
        if "merged" in data:
            data["merged"] = [place.get(task_id, task_id) for task_id in data["merged"]]
        return json.dumps(data, sort_keys=True, default=str)
    return [(depth, task.task_spec.name, TaskState.get_name(task.state),
             json.dumps(task.data, sort_keys=True, default=str), internal(task)) for task, depth in tasks]


def ready_user_tasks(workflow: BpmnWorkflow) -> list:
    return workflow.get_tasks(state=TaskState.READY, manual=True)


class Twins:
    def __init__(self, path, process_id: str, data: dict):
        checked = diagram.check_or_raise(path.read_bytes())
        spec, subprocess_specs = checked.specs[process_id]
        self.spiff, self.ours = (kind(spec, subprocess_specs, script_engine=SafeScriptEngine(service))
                                 for kind in (BpmnWorkflow, EngineWorkflow))
        for workflow in (self.spiff, self.ours):
            for task in workflow.get_tasks(state=TaskState.READY):
                task.data.update(data)
        self.steps(START)

    def steps(self, now: datetime) -> None:
        """Engine steps in both; the same tasks must run in the same order
        (the history's `engine_steps` lists them) and leave the same tree."""
        ran = {"spiff": [], "ours": []}
        with clock.running_at(now):
            self.spiff.do_engine_steps(did_complete_task=lambda task: ran["spiff"].append(task.task_spec.name))
            run_engine_steps(self.ours, did_complete_task=lambda task: ran["ours"].append(task.task_spec.name))
        assert ran["ours"] == ran["spiff"]
        assert tree(self.ours) == tree(self.spiff)
        assert self.ours.is_completed() == self.spiff.is_completed()

    def complete(self, pick, answer) -> str | None:
        """Complete the same ready user task in both (`pick` chooses among
        them, by index in the tree's order); None when none is ready."""
        ready = ready_user_tasks(self.spiff)
        if not ready:
            return None
        index = pick(ready)
        pair = (ready[index], ready_user_tasks(self.ours)[index])
        props = diagram.user_task_properties(pair[0].task_spec)
        data = (decided(pair[0].data["proposal"]) if props["formKey"] == "recognition_decision"
                else answer(props["formKey"]))
        form = validate_form(props["formKey"], data, "S10")
        with clock.running_at(START):
            for task in pair:
                task.data[props["dataKey"]] = form
                task.run()
        self.steps(START)
        return props["formKey"]

    def fire_timers(self) -> None:
        for workflow in (self.spiff, self.ours):
            with clock.running_at(ROUND_PASSED):
                workflow.refresh_timers()
        self.steps(ROUND_PASSED)


# A council of three, all present (what the session page records).
ATTENDANCE = {"session_id": None, "council_id": None, "council_name": "Hội đồng", "held_on": "2026-11-02",
              "place": "", "members": [{"user_id": uid, "name": f"TV {uid}", "department": "", "role": role}
                                       for uid, role in ((1, "chair"), (2, "member"), (3, "secretary"))],
              "present": [1, 2, 3], "quorum_fraction": 0.75, "chair_required": True, "spread_limit": 10.0,
              "chair_id": 1, "secretary_id": 3}
COUNCIL_FORMS = {"council_attendance": ATTENDANCE, "council_spread": {"notes": "Thảo luận, chấm lại"},
                 "council_sign_off": {"confirmed": True}}


def decided(proposal: dict) -> dict:
    """A numbered decision saying what the proposal before it proposes (what
    the decision page records; the twins have no database for its row)."""
    return {"decision": {"id": 1, "number": "1/QĐ-UBND", "signed_on": "2026-11-20",
                         "signer": "Chủ tịch Ủy ban nhân dân tỉnh", "authority": "province"},
            "outcome": proposal["outcome"], "stars": proposal["stars"]}


def answers(returns: dict[str, int], scores=(92, 93, 95)):
    """Reviews return as asked, then accept; each council's members all
    score the next of `scores`."""
    pending, council, score = dict(returns), iter(scores), [None]

    def answer(form_key: str) -> dict:
        if pending.get(form_key):
            pending[form_key] -= 1
            return returned(form_key)
        if form_key == "council_attendance":
            score[0] = next(council)
        if form_key == "council_sheet":
            return {"levels": levels_for_total("S10", score[0])}
        return COUNCIL_FORMS.get(form_key) or VALID[form_key]
    return answer


PRODUCT_DATA = {"product_id": 1, "product_name": "Hồ tiêu", "product_group": "S10", "producer_id": 1,
                "commune_id": 3, "district_id": 2, "province_id": 1, "year": 2026, "max_resubmissions": 3}


@pytest.mark.parametrize("path", [NATIONAL_DIAGRAM[1], TWO_TIER_DIAGRAM[1]], ids=["national", "two_tier"])
@pytest.mark.parametrize("returns, scores, pick", [
    ({}, (92, 93, 95), lambda ready: 0),
    ({"review_idea": 2, "review_plan": 1, "check_dossier": 1}, (60, 62, 61), lambda ready: len(ready) - 1),
    ({"review_idea": 4}, (92, 93, 95), lambda ready: 0),  # past the resubmission limit
    ({}, (40, 41, 39), lambda ready: len(ready) // 2),
], ids=["five_stars", "returns_last_branch_first", "too_many_returns", "not_recognised"])
def test_a_product_cycle_steps_as_spiffworkflow_does(path, returns, scores, pick):
    twins = Twins(path, diagram.PRODUCT_PROCESS, PRODUCT_DATA)
    done = drive(twins, pick, answers(returns, scores))
    assert twins.spiff.is_completed() and twins.ours.is_completed(), done
    assert len(done) >= 5


def drive(twins: Twins, pick, answer, limit: int = 80) -> list[str]:
    """Complete tasks until the end; fire the timers when only they are left."""
    done, timers = [], 0
    for _ in range(limit):
        form_key = twins.complete(pick, answer)
        if form_key is not None:
            done.append(form_key)
        elif not twins.spiff.is_completed() and timers < 3:
            twins.fire_timers()
            timers += 1
        else:
            break
    return done


@pytest.mark.parametrize("seed", range(12))
def test_random_paths_step_as_spiffworkflow_does(seed):
    """Sample decisions (returns, scores, which parallel branch first) on both diagrams and processes."""
    rng = random.Random(seed)
    decider = SampleDecider(rng, accept_rate=0.6)
    path = (NATIONAL_DIAGRAM, TWO_TIER_DIAGRAM)[seed % 2][1]
    process, data = ((diagram.OUTREACH_PROCESS, {"jurisdiction_id": 3, "year": 2026}) if seed % 3 == 0
                     else (diagram.PRODUCT_PROCESS, PRODUCT_DATA))
    twins = Twins(path, process, data)
    done = drive(twins, lambda ready: rng.randrange(len(ready)),
                 lambda form_key: COUNCIL_FORMS.get(form_key) or decider.form(form_key, "S10", START.date(),
                                                                             quality=rng.uniform(30, 98)))
    assert twins.spiff.is_completed() and twins.ours.is_completed(), done
