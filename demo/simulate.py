"""`ocop simulate`: many products through the real engine and database, with
seeded random decisions and scores, and the funnel they produce.

The funnel is computed from what was persisted (audit events and instance
rows), not from what the simulator thinks it did.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Callable

from sqlalchemy import select

from demo.seed import run_outreach
from demo.sim_behaviour import QUALITY_MEAN, QUALITY_SPREAD, QualityDecider
from engine.access import load_actor
from engine.bpmn_engine import BpmnEngine
from engine.clock import MovableClock
from engine.driver import Driver
from engine.errors import RegistrationClosed
from engine.samples import SampleDecider
from engine.sandbox import add_sample_products
from storage.models import AuditEvent, Jurisdiction, ProcessInstance, User

SIM_USERNAME = "sim.producer"
STEP_NAMES = {2: "ý tưởng / idea", 3: "phương án / plan", 4: "triển khai / implementation",
              5: "đánh giá / evaluation", 6: "xúc tiến / promotion"}


def create_products(engine: BpmnEngine, count: int, rng: random.Random) -> list[int]:
    """Producers and products spread over every commune, owned by one
    simulation user (so the producer's tasks have a real actor)."""
    with engine.db.transaction() as session:
        communes = session.scalars(select(Jurisdiction).where(Jurisdiction.level == "commune")).all()
        if not communes:
            raise RuntimeError("no communes: run `ocop init --demo` first")
        owner = session.scalar(select(User).where(User.username == SIM_USERNAME))
        if owner is None:
            owner = User(username=SIM_USERNAME, full_name="Chủ thể mô phỏng")
            session.add(owner)
            session.flush()
        commune_ids = [rng.choice(communes).id for _ in range(count)]
        return add_sample_products(session, owner.id, commune_ids, count, rng, "mô phỏng")


def simulate(engine: BpmnEngine, products: int, seed: int,
             progress: Callable[[int], None] | None = None) -> dict:
    rng = random.Random(seed)
    if not hasattr(engine.clock, "now"):
        # Simulated time: it moves forward when a product waits for a timer
        # (the provincial round), instead of waiting months.
        engine.clock = MovableClock(engine.clock())
    # Qualities as in `--years` (about 70-75% 3 stars, under 1% 5 stars among
    # the recognised); reviews return weak products more often.
    decider = QualityDecider(rng, score_mean=QUALITY_MEAN, score_spread=QUALITY_SPREAD)
    driver = Driver(engine, decider)
    product_ids = create_products(engine, products, rng)
    with engine.db.transaction() as session:
        owner = load_actor(session, session.scalar(select(User.id).where(User.username == SIM_USERNAME)))
    instance_ids = []
    start = engine.clock()
    for product_id in product_ids:
        engine.clock.now = start  # each product registers now; its own time then moves on
        try:
            started = engine.start_product(product_id, owner)
        except RegistrationClosed:
            run_outreach(engine, Driver(engine, SampleDecider(random.Random(seed), accept_rate=1.0)))
            started = engine.start_product(product_id, owner)
        driver.run_to_end(started.instance_id, quality=decider.product_quality())
        instance_ids.append(started.instance_id)
        if progress:
            progress(1)
    return funnel(engine, instance_ids)


def funnel(engine: BpmnEngine, instance_ids: list[int]) -> dict:
    """How many products reached each step, how many were returned (and
    resubmitted), where they ended, and the star distribution."""
    reached: Counter = Counter()
    returns: Counter = Counter()
    returned_products: Counter = Counter()
    ends: Counter = Counter()
    stars: Counter = Counter()
    with engine.db.transaction() as session:
        for chunk_start in range(0, len(instance_ids), 500):
            chunk = instance_ids[chunk_start:chunk_start + 500]
            per_instance_steps: dict[int, set] = {}
            per_instance_returns: dict[int, set] = {}
            for event in session.scalars(select(AuditEvent).where(
                    AuditEvent.instance_id.in_(chunk),
                    AuditEvent.kind.in_(("task_completed", "service_called")))):
                step = event.data.get("step")
                if step:
                    per_instance_steps.setdefault(event.instance_id, set()).add(step)
                if event.data.get("form", {}).get("decision") == "return":
                    returns[event.data["form_key"]] += 1
                    per_instance_returns.setdefault(event.instance_id, set()).add(event.data["form_key"])
            for steps in per_instance_steps.values():
                reached.update(steps)
            for keys in per_instance_returns.values():
                returned_products.update(keys)
            for instance in session.scalars(select(ProcessInstance).where(ProcessInstance.id.in_(chunk))):
                ends[instance.end_event or instance.status] += 1
                if instance.stars:
                    stars[instance.stars] += 1
    return {
        "products": len(instance_ids),
        "reached_step": {step: reached[step] for step in sorted(STEP_NAMES)},
        "returns_by_form": dict(sorted(returns.items())),
        "products_returned_by_form": dict(sorted(returned_products.items())),
        "ended_at": dict(sorted(ends.items())),
        "stars": {n: stars[n] for n in (3, 4, 5)},
    }


def format_funnel(result: dict) -> str:
    lines = [f"Sản phẩm / products: {result['products']}", "Đến bước / reached step:"]
    for step, count in result["reached_step"].items():
        lines.append(f"  {step} {STEP_NAMES[step]:<32} {count:>7}")
    lines.append("Trả lại / returned (times, products):")
    for form_key, count in result["returns_by_form"].items():
        lines.append(f"  {form_key:<34} {count:>7} {result['products_returned_by_form'][form_key]:>7}")
    lines.append("Kết thúc / ended at:")
    for end, count in result["ended_at"].items():
        lines.append(f"  {end:<34} {count:>7}")
    lines.append("Hạng sao / stars: " + ", ".join(f"{n}★ {c}" for n, c in result["stars"].items()))
    return "\n".join(lines)
