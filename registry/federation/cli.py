"""``ndr federation add|list|remove|status|submit|poll``: the hub's trust configuration and
one-shot runs of the federation loops (for cron, or to see what a witness answers)."""

from __future__ import annotations

import json

import click


def _state():  # type: ignore[no-untyped-def]
    from registry.cli import _state as state

    return state()


@click.group("federation", help="Federation: members this hub witnesses, and witnesses.")
def federation_group() -> None:
    pass


@federation_group.command("add", help="Follow a member log (its origin and verifier key).")
@click.argument("origin")
@click.argument("verifier_key")
@click.option("--url", help="The member registry's base URL (required to poll it).")
@click.option("--mode", type=click.Choice(["push", "poll"]), default="push", show_default=True)
@click.option("--interval", type=float, default=30.0, show_default=True,
              help="Seconds between polls.")
def add(origin: str, verifier_key: str, url: str | None, mode: str, interval: float) -> None:
    from registry.cli import _fail_on_problem
    from registry.federation.trust import add_member

    @_fail_on_problem
    def run() -> None:
        state = _state()
        with state.db.write() as session:
            member = add_member(session, origin, verifier_key, url=url, mode=mode,
                                interval=interval)
            click.echo(f"following {member.origin} ({member.mode})")

    run()


@federation_group.command("remove", help="Stop following a member (its records stay).")
@click.argument("origin")
def remove(origin: str) -> None:
    from registry.cli import _fail_on_problem
    from registry.federation.trust import remove_member

    @_fail_on_problem
    def run() -> None:
        state = _state()
        with state.db.write() as session:
            remove_member(session, origin)
        click.echo(f"removed {origin}; its witnessed checkpoints and records are kept")

    run()


@federation_group.command("list", help="The trust configuration.")
def list_() -> None:
    from registry.federation.api import member_json
    from registry.federation.trust import list_members

    state = _state()
    with state.db.read() as session:
        for member in list_members(session):
            click.echo(json.dumps(member_json(member), ensure_ascii=False))


@federation_group.command("status", help="Each member's head, lag and alarms; the witness key.")
def status() -> None:
    from registry.federation.runtime import federation
    from registry.federation.trust import list_members

    state = _state()
    click.echo(f"witness key: {federation(state).witness.signer.vkey}")
    with state.db.read() as session:
        for m in list_members(session):
            flag = "ALARM " + m.alarm if m.alarm else (m.last_error or "ok")
            click.echo(f"{m.status:<8} {m.mode:<5} {m.origin}  size {m.witnessed_size}  "
                       f"seen {m.last_seen_at or '-'}  {flag}")
    parts = federation(state)
    for w in parts.witnesses:
        click.echo(f"witness  {w.verifier.name} at {w.url} (quorum {parts.quorum})")


@federation_group.command("submit", help="Submit our latest checkpoint to the witnesses once.")
def submit() -> None:
    from registry.federation.member import CheckpointSubmitter
    from registry.federation.runtime import federation

    state = _state()
    parts = federation(state)
    if not parts.witnesses:
        raise click.ClickException("no witnesses configured (NDR_WITNESSES)")
    outcomes = CheckpointSubmitter(state.db.read, state.db.write, state.log,
                                   parts.witnesses).run_once()
    click.echo(json.dumps(outcomes, ensure_ascii=False))


@federation_group.command("poll", help="Poll every poll-mode member once.")
def poll() -> None:
    from registry.federation.poller import MemberPoller
    from registry.federation.runtime import federation

    state = _state()
    outcomes = MemberPoller(state.db.read, state.db.write, federation(state).witness
                            ).run_once(force=True)
    click.echo(json.dumps(outcomes, ensure_ascii=False))


@federation_group.command("mirror", help="Mirror every member once; print the report.")
def mirror() -> None:
    from registry.federation.mirror import Mirror

    state = _state()
    click.echo(json.dumps(Mirror(state).run_once(), ensure_ascii=False))


@federation_group.command("rotation-statement",
                          help="Member side: sign, with the current log key, a statement "
                               "moving to the key in NEW_KEY_FILE; print it.")
@click.argument("new_key_file", type=click.Path(exists=True, dir_okay=False))
def rotation_statement(new_key_file: str) -> None:
    from anchoring.auditor.key_rotation import sign_rotation
    from anchoring.keys import load_key_file
    from registry.bootstrap import load_signer
    from registry.cli import _settings

    new = load_key_file(new_key_file)
    click.echo(sign_rotation(load_signer(_settings()), new.verifier_key), nl=False)


@federation_group.group("harvest", help="Sources without a log (CKAN API, DCAT-AP, data.json): "
                                        "harvested, provenance not verified.")
def harvest_group() -> None:
    pass


@harvest_group.command("add")
@click.argument("kind", type=click.Choice(["ckan", "dcat", "datajson"]))
@click.argument("url")
@click.option("--interval", type=float, default=3600.0, show_default=True)
def harvest_add(kind: str, url: str, interval: float) -> None:
    from registry.federation.harvest import LABEL, add_source

    state = _state()
    try:
        with state.db.write() as session:
            source = add_source(session, kind, url, interval)
            click.echo(f"source {source.id}: {kind} {url} ({LABEL})")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@harvest_group.command("list")
def harvest_list() -> None:
    from sqlalchemy import select

    from registry.federation.harvest import source_json
    from registry.federation.models import HarvestSource

    state = _state()
    with state.db.read() as session:
        for source in session.scalars(select(HarvestSource).order_by(HarvestSource.id)):
            click.echo(json.dumps(source_json(source), ensure_ascii=False))


@harvest_group.command("run", help="Harvest every source now (or one, --source); print reports.")
@click.option("--source", "source_id", type=int)
def harvest_run(source_id: int | None) -> None:
    from sqlalchemy import select

    from registry.federation.harvest import harvest_source
    from registry.federation.models import HarvestSource

    state = _state()
    with state.db.read() as session:
        ids = [source_id] if source_id else list(session.scalars(select(HarvestSource.id)))
    failed = False
    for sid in ids:
        report = harvest_source(state, sid, progress=lambda m: click.echo(m, err=True))
        click.echo(report.line())
        for position, external_id, reasons in report.rejected[:20]:
            click.echo(f"  rejected #{position} {external_id or ''}: {'; '.join(reasons)}")
        failed |= report.error is not None
    if failed:
        raise SystemExit(1)
