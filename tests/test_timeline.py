"""The auditor's reading of an instance's history (audit/timeline.py):
timeline rows and diagram frames, from real cycles on SQLite and PostgreSQL
and from hand-made histories (older rows, kinds not known yet)."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from audit import timeline
from programme.definitions import NATIONAL_DIAGRAM
from storage.models import ProcessInstance, User
from testkit.cycle import Cycle, returned, sheets

PRODUCT = "Hồ tiêu Gio Linh"


def states(frames: list[dict]) -> list[dict]:
    """The full state after each event, from the deltas (as history.js does)."""
    done, flows, acted, active, result = {}, {}, {}, [], []
    for frame in frames:
        done = {**done, **frame.get("done", {})}
        flows = {**flows, **frame.get("flows", {})}
        acted = {**acted, **frame.get("acted", {})}
        active = frame.get("active", active)
        result.append({"seq": frame["seq"], "kind": frame["kind"], "done": done, "flows": flows,
                       "acted": acted, "active": active})
    return result


def user_id(world, username: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(User.id).where(User.username == username))


def returned_twice(world) -> Cycle:
    """The idea is returned twice (the first review claimed first), then
    accepted; the product goes on to 3 stars."""
    cycle = Cycle(world, PRODUCT).start()
    for round_ in range(2):
        cycle.do("register_idea")
        cycle.do("receive_idea")
        if round_ == 0:
            review = cycle.task("review_idea")
            world.claim(review.id, cycle.actor("review_idea"))
        cycle.do("review_idea", returned("review_idea"))
    cycle.through_dossier()
    cycle.do("score_product", sheets(60))
    return cycle


def history_of(world, instance_id: int) -> timeline.History:
    with world.db.transaction() as session:
        return timeline.load_history(session, instance_id)


def test_frames_count_loops_flows_and_who_acted(world):
    cycle = returned_twice(world)
    history = history_of(world, cycle.instance_id)
    frames = timeline.frames(history.events, history.graph)
    assert [f["seq"] for f in frames] == [e.seq for e in history.events]  # one frame per event
    final = states(frames)[-1]

    # Three rounds of the idea, two of them returned: elements and flows counted.
    assert final["done"]["task_register_idea"] == 3
    assert final["done"]["task_review_idea"] == 3
    assert final["done"]["gw_idea_decision"] == 3
    assert final["done"]["notify_idea_returned"] == 2
    assert final["flows"]["flow_idea_back"] == 2            # "returned 2x"
    assert final["flows"]["flow_idea_return"] == 2
    assert final["flows"]["flow_idea_accept"] == 1
    assert final["flows"]["flow_receive_review"] == 3
    assert final["flows"]["flow_init_register"] == 1         # the first round came from the start
    # The parallel join was reached by both branches.
    assert final["flows"]["flow_dossier_join"] == final["flows"]["flow_support_join"] == 1
    assert final["done"]["end_recognised"] == 1 and final["active"] == []
    # Who acted where: the producer registered, the district officer reviewed.
    assert final["acted"]["task_register_idea"] == [cycle.owner.user_id]
    assert final["acted"]["task_review_idea"] == [user_id(world, "cb.qt-gl")]
    assert final["acted"]["task_score_district"] == [user_id(world, "hd.qt-gl")]
    # Nothing on the diagram that is not in it.
    assert set(final["done"]) <= set(history.graph.types)
    assert set(final["flows"]) <= set(history.graph.names) - set(history.graph.types)


def test_frames_show_the_state_at_each_point(world):
    cycle = returned_twice(world)
    history = history_of(world, cycle.instance_id)
    seen = states(timeline.frames(history.events, history.graph))
    kinds = [s["kind"] for s in seen]
    officer = user_id(world, "cb.qt-gl")

    first_ready = seen[kinds.index("tasks_ready")]
    assert first_ready["active"] == [["task_register_idea", None]]
    assert first_ready["done"] == {"start_product_cycle": 1, "script_init_counters": 1}
    claim = seen[kinds.index("claimed")]
    assert claim["active"] == [["task_review_idea", officer]]
    assert "task_review_idea" not in claim["done"]
    # The first gateway decision reveals the gateway, not yet what follows it.
    decision = seen[kinds.index("gateway_decision")]
    assert decision["done"]["gw_idea_decision"] == 1 and "script_idea_return" not in decision["done"]
    assert decision["flows"]["flow_review_idea_decision"] == 1
    assert "flow_idea_return" not in decision["flows"]
    # The first return, once its engine call is over: back at the producer.
    back = seen[kinds.index("tasks_ready", kinds.index("gateway_decision"))]
    assert back["active"] == [["task_register_idea", None]]
    assert back["flows"]["flow_idea_back"] == 1 and back["done"]["task_review_idea"] == 1
    # Counts only grow.
    for earlier, later in zip(seen, seen[1:]):
        assert all(later["done"].get(k, 0) >= v for k, v in earlier["done"].items())
        assert all(later["flows"].get(k, 0) >= v for k, v in earlier["flows"].items())


def test_timeline_rows_name_the_actor_role_and_changes(world):
    cycle = returned_twice(world)
    history = history_of(world, cycle.instance_id)
    rows = timeline.timeline_rows(history)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    by_kind = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)

    started = by_kind["started"][0]
    assert (started.actor_name, started.role) == ("Lê Văn Tâm", "producer")
    assert started.summary == {"definition": "ocop_cycle", "version": 1}
    claim = by_kind["claimed"][0]
    assert (claim.actor_name, claim.role) == ("Cán bộ OCOP Huyện Gio Linh", "district_officer")
    assert claim.summary["assignee"] == "Cán bộ OCOP Huyện Gio Linh"

    review = next(r for r in by_kind["task_completed"] if r.data["form_key"] == "review_idea")
    assert (review.actor_name, review.role, review.step) == ("Cán bộ OCOP Huyện Gio Linh", "district_officer", 2)
    assert review.summary["decision"] == "return"
    sections = dict(review.sections)
    assert dict(sections["form"])["decision"] == "return"
    assert dict(sections["set"])["idea_returns"] == 1

    gateway = by_kind["gateway_decision"][0]
    assert gateway.element_name == "Ý tưởng được chấp nhận?" and gateway.actor_name is None
    assert dict(gateway.sections)["taken"] == [("Ghi nhận trả lại", None)]
    assert dict(dict(gateway.sections)["inputs"]) == {"idea_review['decision']": "return"}
    training = next(r for r in by_kind["service_called"] if r.summary["handler"] == "schedule_training")
    assert dict(dict(training.sections)["params"]) == {"topic": "business_plan"}
    assert dict(dict(training.sections)["result"])["title"].startswith("Tập huấn")

    assert all(not r.main for r in rows if r.kind in ("engine_steps", "tasks_ready"))
    assert all(r.main for r in rows if r.kind not in ("engine_steps", "tasks_ready"))
    ready = by_kind["tasks_ready"][0]
    assert ready.summary["names"] == ["Đăng ký ý tưởng sản phẩm"]
    finished = by_kind["finished"][0]
    assert finished.summary == {"stars": 3, "end": "Được công nhận, xúc tiến thương mại"}


def event(seq, kind, element=None, data=None, actor=None):
    return timeline.Event(seq, datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc), actor, kind, element, data or {})


def test_older_rows_and_unknown_kinds_never_break_the_reading():
    """Rows written before task ids, deltas and gateway decisions were
    recorded, and kinds a later version may add (timer_fired)."""
    graph = timeline.read_graph(NATIONAL_DIAGRAM[1].read_bytes())
    events = [
        event(1, "started", "ocop_product_cycle", {"definition": "ocop_cycle", "version": 1, "data": {}}, 5),
        event(2, "engine_steps", None, {"elements": ["start_product_cycle", "script_init_counters"]}),
        event(3, "tasks_ready", None, {"elements": ["task_register_idea"]}),
        event(4, "task_completed", "task_register_idea", {"name": "Đăng ký", "form": {"x": 1}}, 5),
        event(5, "tasks_ready", None, {"elements": ["task_receive_idea"]}),
        event(6, "claimed", "task_receive_idea", {"assignee": 9, "previous": None}, 9),
        event(7, "timer_fired", "timer_x", {"at": "2026-03-09"}),
        event(8, "task_completed", "task_receive_idea", {"form": {}}, 9),
        event(9, "tasks_ready", None, {"elements": ["task_review_idea"]}),
        event(10, "task_completed", "task_review_idea", {"form": {"decision": "return"}}, 7),
        # No gateway_decision rows: the flows are found from what completed.
        event(11, "engine_steps", None, {"elements": ["gw_idea_decision", "script_idea_return", "gw_idea_limit",
                                                      "notify_idea_returned"]}),
        event(12, "tasks_ready", None, {"elements": ["task_register_idea"]}),
        event(13, "migrated", None, {"from_version": 1, "to_version": 2, "definition": "ocop_cycle",
                                     "changed_elements": ["task_score_district"]}, 1),
        event(14, "cancelled", None, {"reason": "thử"}, 1),
        event(15, "something_new", "whatever", {"deep": {"a": [1, {"b": None}]}}),
    ]
    seen = states(timeline.frames(events, graph))
    assert len(seen) == len(events)
    assert seen[5]["active"] == [["task_receive_idea", 9]]      # claimed without a task id
    assert seen[7]["active"] == []
    after_return = seen[11]
    assert after_return["flows"]["flow_idea_return"] == 1        # gateway -> script, by the fallback
    assert after_return["flows"]["flow_idea_back"] == 1
    assert after_return["active"] == [["task_register_idea", None]]
    assert seen[13]["active"] == []                              # cancelled: nothing waits
    assert seen[14] == {**seen[13], "seq": 15, "kind": "something_new"}

    history = timeline.History(
        instance=ProcessInstance(id=1, areas={"commune": 4}), product_name=None, producer_name=None,
        producer_owner_id=5, area_name="Xã", definition_name="ocop_cycle", definition_version=2,
        events=events, users={5: "Chủ thể", 9: "Cán bộ xã", 7: "Cán bộ huyện"},
        roles={9: [("commune_officer", 4)], 1: [("admin", 1)]}, graph=graph)
    rows = {row.seq: row for row in timeline.timeline_rows(history)}
    assert rows[1].role == "producer" and rows[6].role == "commune_officer"
    assert rows[13].role == "admin" and rows[13].summary["to_version"] == 2
    assert rows[4].sections == [("form", [("x", 1)])]            # no delta recorded: no delta shown
    assert rows[7].sections == [("data", [("at", "2026-03-09")])] and rows[7].main
    assert rows[15].sections == [("data", [("deep", {"a": [1, {"b": None}]})])]
    assert history.migrated and history.started_version == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_diagram_graph_is_read_once_per_version(world):
    cycle = Cycle(world, PRODUCT).start()
    with world.db.transaction() as session:
        definition_id = session.get(ProcessInstance, cycle.instance_id).definition_id
        first = timeline.graph_for(session, definition_id)
        assert timeline.graph_for(session, definition_id) is first
    assert first.incoming["task_register_idea"]
    assert first.types["gw_implementation_join"] == "parallelGateway"
