"""The `ocop` command: set up the database, run simulations, check and
deploy diagrams, verify the record, run the background jobs. Thin: each
command calls the engine (or a use case) and prints what it did, in words
a newcomer can act on. An operator's tool, it may read and write through
storage directly (the pages may not)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
from sqlalchemy import func, inspect, select
from tqdm import tqdm

from demo.seed import DEMO_ACCOUNTS, DEMO_PASSWORD, demo_present, seed_demo
from demo.sim_figures import format_years
from demo.sim_years import simulate_years
from demo.simulate import format_funnel, simulate
from engine import diagram
from engine.bpmn_engine import BpmnEngine
from engine.errors import DiagramError
from programme import rounds
from programme.definitions import Deployed, deploy_bundled, deploy_diagram
from storage.migrate import upgrade
from storage.models import InboxTask, Jurisdiction, ProcessInstance


def _engine() -> BpmnEngine:
    return BpmnEngine.from_environment()


@click.group()
def main() -> None:
    """ocop-flow: chu trình OCOP chạy trên BPMN / the OCOP cycle on BPMN."""


@main.command()
@click.option("--demo/--no-demo", default=True, show_default=True,
              help="Seed the demo province, officers, producers and products.")
def init(demo: bool) -> None:
    """Create or upgrade the schema, deploy the bundled diagrams, and seed
    the demo (unless --no-demo); says which of these it did."""
    from audit import checkpoints
    engine = _engine()
    upgrade(engine.db.sql_engine)
    if demo:
        setup = seed_demo(engine)
        seeded, diagrams = setup.seeded, setup.diagrams
    else:
        seeded, diagrams = False, deploy_bundled(engine)
    click.echo(f"Database ready: {_url(engine)}")
    for deployed in diagrams:
        click.echo(f"  {_deployed(engine, deployed)}")
    if seeded:
        click.echo("Demo seeded: Quảng Trị and Lào Cai, one officer per role and area, producers, "
                   "and products left at different steps of the cycle.")
    elif demo_present(engine):
        click.echo("Demo data: already there from an earlier `ocop init`, not seeded again.")
    else:
        click.echo("No demo data (--no-demo): the database has no areas and no accounts, so nobody can "
                   "sign in yet; `ocop init` without --no-demo seeds the demo.")
    if demo_present(engine):
        click.echo(f"Sign in with the password {DEMO_PASSWORD} (every demo account has it), e.g. as:")
        for username, who in DEMO_ACCOUNTS:
            click.echo(f"  {username:<14} {who}")
    key_file = checkpoints.key_path()
    if checkpoints.create_key(key_file):
        click.echo(f"Audit signing key created: {key_file} (keep it outside the database and backed up)")


def _url(engine: BpmnEngine) -> str:
    return engine.db.sql_engine.url.render_as_string(hide_password=True)


def _deployed(engine: BpmnEngine, deployed: Deployed) -> str:
    """One line on what deploying a diagram did."""
    scope = "national"
    if deployed.province_id is not None:
        with engine.db.reading() as session:
            scope = session.scalar(select(Jurisdiction.name).where(Jurisdiction.id == deployed.province_id))
    version = f"{deployed.name} version {deployed.version} ({deployed.sha256[:12]}, {scope})"
    if deployed.created:
        return f"Deployed {version}" + (", active" if deployed.active else ", not active")
    if deployed.activated:
        return f"{deployed.name}: already deployed as version {deployed.version} ({deployed.sha256[:12]}, " \
               f"{scope}), nothing new stored; made it the active version again"
    return f"{deployed.name}: already deployed as version {deployed.version} ({deployed.sha256[:12]}, " \
           f"{scope}), nothing changed"


@main.command()
@click.option("--products", "-n", default=100, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--seed", "-s", default=1, show_default=True, type=int)
@click.option("--years", "-y", type=click.IntRange(1, 20), default=None,
              help="Run the programme over Y years on a fake clock (registrations spread over each year's "
                   "window, rounds, the worker's timers); without it, each product runs straight through.")
@click.option("--start", "start_on", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="With --years: the first simulated day (default: 1 January of next year).")
@click.option("--history", type=click.IntRange(0, 10), default=3, show_default=True,
              help="With --years: years the programme already ran before --start (as many products a year): "
                   "the run begins with their certificates, which reach re-evaluation and expiry inside it "
                   "(a certificate is valid 36 months: with 0, a run of 3 years sees none of that).")
@click.option("--json", "json_to", is_flag=False, flag_value="-", default=None, metavar="[PATH]",
              help="Print the figures as JSON (or write them to PATH).")
def simulate_cmd(products: int, seed: int, years: int | None, start_on, history: int,
                 json_to: str | None) -> None:
    """Run N products through the real engine with seeded random decisions.

    Writes into the configured database (OCOP_DATABASE_URL): the products,
    their producers and their cycles stay there, beside the demo's. Needs
    the demo data (`ocop init` seeds it): its areas and accounts."""
    engine = _engine()
    if not inspect(engine.db.sql_engine).has_table("jurisdiction"):
        raise click.ClickException(f"{_url(engine)} is not an ocop-flow database yet: run `ocop init` first "
                                   "(it creates the schema and seeds the demo the simulation needs)")
    upgrade(engine.db.sql_engine)
    if not demo_present(engine):
        raise click.ClickException(f"the demo data is missing from {_url(engine)} (`ocop init --no-demo` "
                                   "seeds none): run `ocop init` to seed it; the simulation writes its "
                                   "products into this database")
    quiet = json_to == "-" or not sys.stderr.isatty()
    started = time.perf_counter()
    if years:
        result = _simulate_years(engine, products, years, seed, start_on and start_on.date(), quiet, history)
    else:
        with tqdm(total=products, unit="product", disable=quiet) as bar:
            try:
                result = simulate(engine, products, seed, progress=bar.update)
            except RuntimeError as err:
                raise click.ClickException(str(err)) from None
    elapsed = time.perf_counter() - started
    if json_to == "-":
        click.echo(json.dumps({**result, "seconds": round(elapsed, 2)}, ensure_ascii=False, indent=2))
        return
    if json_to:
        Path(json_to).write_text(json.dumps({**result, "seconds": round(elapsed, 2)}, ensure_ascii=False,
                                            indent=2), encoding="utf-8")
    click.echo(format_years(result) if years else format_funnel(result))
    click.echo(f"Thời gian / time: {elapsed:.1f} s ({products / elapsed:.1f} products/s)")


def _simulate_years(engine: BpmnEngine, products: int, years: int, seed: int, start_on, quiet: bool,
                    history: int = 0) -> dict:
    """`simulate --years`: the worker's cycle-moving jobs (timers: deadlines,
    escalations, reminders, rounds; retries of failed service tasks) run
    once a simulated day on the moved clock."""
    from background.retries import retry_failed_service_tasks
    from background.timers import fire_due_timers
    jobs = {"timers": fire_due_timers, "retries": retry_failed_service_tasks}
    with tqdm(total=(years + history) * 366, unit="day", disable=quiet) as bar:
        try:
            return simulate_years(engine, products, years, seed, jobs, start=start_on, progress=bar.update,
                                  history=history)
        except RuntimeError as err:
            raise click.ClickException(str(err)) from None


simulate_cmd.name = "simulate"


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def validate(paths: tuple[str, ...]) -> None:
    """Check diagrams (XML safety, XSD, SpiffWorkflow, lint); exit 1 on any error."""
    failed = False
    for path in paths:
        result = diagram.check(Path(path).read_bytes(), os.path.basename(path))
        if result.ok:
            click.echo(f"{path}: OK")
            continue
        failed = True
        for problem in result.problems:
            click.echo(f"{path}: {problem}")
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--products", "-n", default=30, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--seed", "-s", default=1, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def dryrun(path: str, products: int, seed: int, as_json: bool) -> None:
    """Run a diagram through the real engine on a throwaway in-memory
    database with sample products; exit 1 on errors, stuck instances or
    elements never reached."""
    from engine.dryrun import dry_run, format_report
    report = dry_run(Path(path).read_bytes(), products, seed, os.path.basename(path))
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_report(report))
    sys.exit(0 if report.ok else 1)


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True, help="Diagram name, e.g. ocop_cycle.")
@click.option("--message", "-m", default="", help="What changed.")
@click.option("--province", default=None, help="Province code for a local variant.")
@click.option("--author", default=lambda: os.environ.get("USER", "cli"))
def deploy(path: str, name: str, message: str, province: str | None, author: str) -> None:
    """Deploy a diagram as a new immutable version (and activate it). A file
    identical to the latest version of the name stores nothing: that version
    stays (and is made active again if it was not)."""
    engine = _engine()
    province_id = None
    if province:
        with engine.db.reading() as session:
            province_id = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == province,
                                                                       Jurisdiction.level == "province"))
        if province_id is None:
            raise click.BadParameter(f"no province with code {province}", param_hint="--province")
    try:
        deployed = deploy_diagram(engine, Path(path).read_bytes(), name, author, message, province_id)
    except DiagramError as err:
        for problem in err.problems:
            click.echo(f"{path}: {problem}", err=True)
        sys.exit(1)
    click.echo(_deployed(engine, deployed))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
def serve(host: str, port: int, workers: int) -> None:
    """Run the web application: gunicorn where available, Flask's server otherwise."""
    try:
        from gunicorn.app.wsgiapp import run as gunicorn_run
    except ImportError:
        from web.app import create_app
        create_app().run(host=host, port=port)
        return
    sys.argv = ["gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers), "--threads", "4",
                "--access-logfile", "-", "web.wsgi:app"]
    gunicorn_run()


@main.command()
def status() -> None:
    """Instances by status and step, and ready tasks by role."""
    engine = _engine()
    with engine.db.transaction() as session:
        rows = session.execute(select(ProcessInstance.process_id, ProcessInstance.status,
                                      ProcessInstance.current_step, func.count())
                               .group_by(ProcessInstance.process_id, ProcessInstance.status,
                                         ProcessInstance.current_step)).all()
        tasks = session.execute(select(InboxTask.role, InboxTask.name, func.count())
                                .group_by(InboxTask.role, InboxTask.name)).all()
    click.echo("Instances (process, status, step: count):")
    for process_id, state, step, count in rows:
        click.echo(f"  {process_id:<20} {state:<10} {step or '-':>3}: {count}")
    click.echo("Ready tasks (role, task: count):")
    for role, name, count in tasks:
        click.echo(f"  {role:<18} {name}: {count}")
    with engine.db.transaction() as session:
        agendas = rounds.waiting_in_rounds(session)
    if agendas:
        click.echo("Waiting in rounds (area, round: waiting for the council / for the decision):")
    for line in agendas:
        click.echo(f"  {line.area_name} — {line.label}, xét trước {line.decide_by:%d/%m/%Y}: "
                   f"{line.before_council} / {line.before_decision}")


@main.command()
@click.option("--to", "target", required=True, type=int, help="Target process definition id.")
@click.option("--instance", "instance_ids", multiple=True, type=int, help="An instance id (repeatable).")
@click.option("--all-on", "all_on", type=int, default=None,
              help="Every running instance on this definition id.")
@click.option("--apply", "apply_", is_flag=True, help="Migrate the safe instances (default: only print the plan).")
def migrate(target: int, instance_ids: tuple[int, ...], all_on: int | None, apply_: bool) -> None:
    """Move running instances to another version of their diagram.

    Without --apply, prints the plan (safe / unsafe with reasons / not
    applicable) and writes nothing. With --apply, migrates the safe ones,
    one transaction each, and skips the rest. The CLI is an operator tool:
    it runs as the system actor (admin role, no user id in the audit).
    """
    from engine import migration
    from engine.access import SYSTEM_ACTOR
    from programme import definitions
    if bool(instance_ids) == (all_on is not None):
        raise click.UsageError("give either --instance ID ... or --all-on DEFINITION_ID")
    selection = migration.AllOn(all_on) if all_on is not None else list(instance_ids)
    engine = _engine()
    try:
        if not apply_:
            report = migration.plan(engine, selection, target)
            click.echo(f"Plan: to {report.target_name} version {report.target_version} (definition {target})")
            for item in report.instances:
                detail = "; ".join(item.reasons) or (", ".join(item.changed) or "no task of it changes")
                click.echo(f"  instance {item.instance_id}: {item.verdict}: {detail}")
            click.echo(f"{len(report.safe)} safe, {len(report.unsafe)} unsafe, "
                       f"{len(report.not_applicable)} not applicable (nothing written; --apply to migrate)")
            return
        result = definitions.migrate(engine, SYSTEM_ACTOR, selection, target)
    except LookupError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Migrate: to {result.target_name} version {result.target_version} (definition {target})")
    for item in result.results:
        click.echo(f"  instance {item.instance_id}: {item.outcome}"
                   + (f": {'; '.join(item.reasons)}" if item.reasons else ""))
    click.echo(f"{len(result.migrated)} migrated, {len(result.skipped)} skipped, {len(result.failed)} failed")
    sys.exit(1 if result.failed else 0)


# --- the audit --------------------------------------------------------------------

@main.group()
def audit() -> None:
    """Verify the record and issue signed checkpoints."""


@audit.command("verify")
@click.option("--instance", "instance_ids", multiple=True, type=int, help="An instance id (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Every instance.")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False),
              help="Also prove that everything up to this signed checkpoint is unchanged.")
@click.option("--public-key", "public_key_file", type=click.Path(exists=True, dir_okay=False),
              help="PEM public key for --checkpoint (default: the public half of the configured signing key).")
@click.option("--no-replay", is_flag=True, help="Check the hash chains only.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=lambda: min(os.cpu_count() or 1, 8),
              show_default="number of CPUs, at most 8", help="Worker processes for the replay.")
def audit_verify(instance_ids: tuple[int, ...], all_: bool, checkpoint_file: str | None,
                 public_key_file: str | None, no_replay: bool, jobs: int) -> None:
    """Check every hash chain, compare every instance row with its history and
    replay every instance; exit 1 on any problem, naming the instance, the
    event and what differs. What an older history cannot prove is listed
    as unproven, without failing."""
    from audit import checkpoints, verification
    if not (instance_ids or all_ or checkpoint_file):
        raise click.UsageError("give --instance ID ..., --all, or --checkpoint FILE")
    engine = _engine()
    problems, unproven = [], []
    if checkpoint_file:
        document = _read_json(checkpoint_file)
        key_file = Path(public_key_file) if public_key_file else checkpoints.key_path()
        try:
            public_key = checkpoints.load_public_key(key_file.read_bytes())
        except (OSError, ValueError) as err:
            raise click.ClickException(f"cannot read the public key {key_file}: {err}") from None
        leaves = len(document.get("leaves") or [])
        with engine.db.transaction() as session, _bar(leaves, "checkpoint") as bar:
            result = checkpoints.verify_document(session, document, public_key, progress=bar.update)
        click.echo(f"Checkpoint {result.checkpoint_id} of {result.created_at}: {result.covered} instances, "
                   f"key {checkpoints.key_id(public_key)[:16]}: " + ("OK" if result.ok else "FAILED"))
        problems.extend(result.problems)
        unproven.extend(result.unproven)
    if instance_ids or all_:
        ids = None if all_ else list(instance_ids)
        total = len(verification.all_instance_ids(engine)) if ids is None else len(ids)
        with _bar(total, "instance") as bar:
            report = verification.verify(engine, ids, replay_too=not no_replay, jobs=jobs, progress=bar.update)
        what = "chains" if no_replay else "chains and replays"
        click.echo(f"Verified {what} of {report.instances} instances, {report.events} events in "
                   f"{report.seconds:.1f} s ({report.instances / max(report.seconds, 1e-9):.0f} instances/s): "
                   + ("OK" if report.ok else f"{len(report.failed_instances)} instance(s) FAILED"))
        problems.extend(report.problems)
        unproven.extend(report.unproven)
    # The checkpoint and the instance checks both compare rows with their history: one line per finding.
    problems, unproven = list(dict.fromkeys(problems)), list(dict.fromkeys(unproven))
    for problem in problems:
        click.echo(f"  {problem}")
    if unproven:
        click.echo(f"Chưa chứng minh được / unproven (not a failure): {len(unproven)} note(s)")
        for note in unproven[:UNPROVEN_SHOWN]:
            click.echo(f"  {note}")
        if len(unproven) > UNPROVEN_SHOWN:
            click.echo(f"  … {len(unproven) - UNPROVEN_SHOWN} more")
    sys.exit(1 if problems else 0)


UNPROVEN_SHOWN = 20  # older histories all say the same: a few lines show it


@audit.command("checkpoint")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Also write the checkpoint file here.")
def audit_checkpoint(out: str | None) -> None:
    """Sign the current head of every instance's history (a Merkle root)."""
    from audit import checkpoints
    engine = _engine()
    try:
        key = checkpoints.load_private_key(checkpoints.key_path())
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    checkpoint = checkpoints.sign(engine.db, key, engine.clock())
    document = checkpoints.as_file(checkpoint, key.public_key())
    click.echo(f"Checkpoint {checkpoint.id}: {checkpoint.tree_size} instances, {checkpoint.event_count} events, "
               f"root {checkpoint.root_hash}, key {checkpoint.key_id[:16]}")
    if out:
        Path(out).write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
        click.echo(f"Written to {out}")


def _read_json(path: str) -> dict:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise click.ClickException(f"cannot read {path}: {err}") from None
    if not isinstance(document, dict):
        raise click.ClickException(f"{path} is not a checkpoint document")
    return document


def _bar(total: int, unit: str):
    """A progress bar on stderr when it is a terminal."""
    return tqdm(total=total, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty())


@main.command()
@click.option("--once", is_flag=True, help="Run every job once now and exit.")
@click.option("--job", "names", multiple=True, help="Only this job (repeatable); see --list.")
@click.option("--list", "list_", is_flag=True, help="List the jobs and their intervals.")
def worker(once: bool, names: tuple[str, ...], list_: bool) -> None:
    """Background work without a broker: due timers, the outbox, digests,
    checkpoints. Runs until stopped (Ctrl-C), or once with --once."""
    import logging
    import threading

    from background import jobs
    from background.worker import Scheduler, run_once
    known = jobs.all_jobs()
    if list_:
        for name, job in sorted(known.items()):
            click.echo(f"{name:<12} every {job.every_seconds:>6} s  {job.description} (counts {job.counts})")
        return
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise click.BadParameter(f"no job {', '.join(unknown)} (known: {', '.join(sorted(known))})",
                                 param_hint="--job")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = _engine()
    if once:
        done = run_once(engine, list(names) or None)
        for name, count in done.items():  # e.g. "outbox: 5 notifications delivered"
            click.echo(f"{name}: {'FAILED (see log)' if count < 0 else f'{count} {known[name].counts}'}")
        sys.exit(1 if any(count < 0 for count in done.values()) else 0)
    stop = threading.Event()
    click.echo("ocop worker running (Ctrl-C stops it)")
    try:
        Scheduler(engine, list(names) or None).run(stop)
    except KeyboardInterrupt:
        stop.set()
