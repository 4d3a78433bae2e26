"""`ndr`, the registry's command line (also reachable as `flask --app app <command>`).

`ndr verify` and `ndr monitor` are the auditor's commands: they are dispatched before anything
of the server is imported, so they run with only the standard library and `cryptography`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

AUDITOR_COMMANDS = ("verify", "monitor", "verify-evidence")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in AUDITOR_COMMANDS:
        from anchoring.auditor.cli import main as auditor_main

        return auditor_main(args)
    try:
        cli.main(args=args, prog_name="ndr", standalone_mode=True)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def _settings():  # type: ignore[no-untyped-def]
    from registry.config import Settings

    return Settings()


def _state():  # type: ignore[no-untyped-def]
    from registry.bootstrap import NotInitialised, build_state

    try:
        return build_state(_settings())
    except NotInitialised as exc:
        raise click.ClickException(str(exc)) from None


def _operator():  # type: ignore[no-untyped-def]
    """The CLI runs on the server with the operator's authority (it can read the key file)."""
    from registry.auth.principal import Principal
    from registry.organizations.models import Role

    return Principal(id="cli:operator", organization_id=None, role=Role.OPERATOR)


def _fail_on_problem(func):  # type: ignore[no-untyped-def]
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        from registry.problems import Problem

        try:
            return func(*args, **kwargs)
        except Problem as problem:
            details = "; ".join(f"{e.pointer or e.name}: {e.detail}" for e in problem.errors)
            raise click.ClickException(f"{problem.title}: {problem.detail}"
                                       + (f" ({details})" if details else "")) from None
    return wrapper


@click.group(help="National data registry: catalogue, transparency log and anchoring.")
def cli() -> None:
    pass


# The auditor's commands, listed in `ndr --help`. `main()` hands them to the stdlib-only
# auditor before click (or anything of the server) is loaded; these entries only make them
# visible, and run the same code when reached another way (`flask --app app verify`).
_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True,
                 "help_option_names": []}


@cli.command("verify", context_settings=_PASS_THROUGH, add_help_option=False,
             help="Check a proof bundle offline (auditor).")
@click.pass_context
def verify_command(ctx: click.Context) -> None:
    from anchoring.auditor.cli import main as auditor_main

    ctx.exit(auditor_main(["verify", *ctx.args]))


@cli.command("monitor", context_settings=_PASS_THROUGH, add_help_option=False,
             help="Replay and watch the log (auditor).")
@click.pass_context
def monitor_command(ctx: click.Context) -> None:
    from anchoring.auditor.cli import main as auditor_main

    ctx.exit(auditor_main(["monitor", *ctx.args]))


@cli.command("init", help="Create the database schema and the log signing key (0600).")
@click.option("--demo/--no-demo", default=False, help="Load the small demo catalogue.")
@_fail_on_problem
def init_command(demo: bool) -> None:
    from registry.bootstrap import ensure_signing_key, private_database_files
    from registry.database import Database
    from registry.migrate import upgrade_database

    settings = _settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    signer, created = ensure_signing_key(settings)
    private_database_files(settings.database_url)  # created 0600 before SQLite opens it
    db = Database(settings.database_url)
    upgrade_database(db.engine)
    click.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")
    click.echo(("created" if created else "kept") + f" log key; verifier key: "
               f"{signer.verifier_key}")
    if demo:
        from registry.demo import load_demo_catalogue

        state = _state()
        loaded = load_demo_catalogue(state)
        click.echo(f"demo catalogue: {loaded}")
    db.dispose()


@cli.group("db", help="Database schema.")
def db_group() -> None:
    pass


@db_group.command("upgrade")
def db_upgrade() -> None:
    from registry.database import Database
    from registry.migrate import upgrade_database

    db = Database(_settings().database_url)
    upgrade_database(db.engine)
    click.echo("schema is at the newest revision")


@cli.group("org", help="Organisations (departments).")
def org_group() -> None:
    pass


@org_group.command("create")
@click.argument("org_id")
@click.option("--name-zh")
@click.option("--name-en")
@click.option("--kind", default="other",
              type=click.Choice(["ministry", "bureau", "province", "city", "county", "agency",
                                 "other"]))
@click.option("--parent")
@click.option("--region-code")
@_fail_on_problem
def org_create(org_id: str, name_zh: str | None, name_en: str | None, kind: str,
               parent: str | None, region_code: str | None) -> None:
    from registry.organizations.actions import organization_create

    state = _state()
    body = {k: v for k, v in {"id": org_id, "name_zh": name_zh, "name_en": name_en,
                              "kind": kind, "parent": parent,
                              "region_code": region_code}.items() if v}
    with state.db.write() as session:
        org = organization_create(session, _operator(), body)
        click.echo(f"created organisation {org.id}")


@org_group.command("list")
def org_list() -> None:
    from registry.datasets.policy import organization_counts
    from registry.organizations.actions import organization_list

    state = _state()
    with state.db.read() as session:
        counts = organization_counts(session, None)  # what the public sees
        for org in organization_list(session):
            click.echo(f"{org.id}\t{org.parent_id or '-'}\t{counts.get(org.id, 0)}\t"
                       f"{org.name_zh or ''}\t{org.name_en or ''}")


@cli.group("token", help="API tokens (the secret is shown once and stored only as a hash).")
def token_group() -> None:
    pass


@token_group.command("create")
@click.option("--org", "organization_id", help="Organisation the token acts for.")
@click.option("--role", default="editor",
              type=click.Choice(["member", "editor", "admin", "operator"]))
@click.option("--name", default="cli token")
@click.option("--expires-days", type=click.IntRange(1, 365), default=365, show_default=True,
              help="Days until the token expires (1-365; every token expires).")
@_fail_on_problem
def token_create(organization_id: str | None, role: str, name: str, expires_days: int) -> None:
    from registry.auth.tokens import issue_token
    from registry.organizations.models import Role

    state = _state()
    with state.db.write() as session:
        issued = issue_token(session, name=name, organization_id=organization_id,
                             role=Role(role), expires_in_days=expires_days)
        click.echo(f"token id {issued.token.id} ({role}"
                   f"{' of ' + organization_id if organization_id else ''}); "
                   "the secret is shown only now:", err=True)
        click.echo(issued.secret)


@token_group.command("revoke")
@click.argument("token_id")
@_fail_on_problem
def token_revoke(token_id: str) -> None:
    from registry.auth.tokens import token_revoke as revoke

    state = _state()
    with state.db.write() as session:
        revoke(session, _operator(), token_id)
    click.echo(f"revoked {token_id}")


@cli.group("user", help="Portal users (passwords are hashed with argon2).")
def user_group() -> None:
    pass


@user_group.command("create")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True)
@click.option("--org", "organization_id")
@click.option("--role", default="editor", type=click.Choice(["member", "editor", "admin"]))
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@_fail_on_problem
def user_create(email: str, display_name: str, organization_id: str | None, role: str,
                password: str) -> None:
    from registry.auth.users import create_user

    state = _state()
    with state.db.write() as session:
        user = create_user(session, email=email, display_name=display_name, password=password,
                           organization_id=organization_id, role=role)
        click.echo(f"created user {user.email}")


@user_group.command("set-password", help="Change a password; ends every session of the user.")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@_fail_on_problem
def user_set_password(email: str, password: str) -> None:
    from sqlalchemy import select

    from registry.auth.users import set_password
    from registry.organizations.models import User

    state = _state()
    with state.db.write() as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise click.ClickException(f"no user {email}")
        ended = set_password(session, user, password)
    click.echo(f"password changed; {ended} session(s) ended")


@user_group.command("unlock", help="Lift a sign-in lockout (after repeated failed sign-ins).")
@click.option("--email", required=True)
def user_unlock(email: str) -> None:
    from registry.auth.lockout import unlock

    with _state().db.write() as session:
        unlock(session, email)
    click.echo(f"{email} may sign in again")


@cli.command("import", help="Import a catalogue file: our JSON lines, data.json or CKAN JSON.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--org", "organization_id", required=True)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "datajson", "ckan"]),
              required=True)
@click.option("--suborgs/--no-suborgs", default=False,
              help="Create sub-organisations for nested publishers.")
@click.option("--batch-size", default=500, show_default=True)
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every rejected record, with its reasons, to this JSON Lines file.")
@_fail_on_problem
def import_command(path: Path, organization_id: str, fmt: str, suborgs: bool,
                   batch_size: int, rejects_path: Path | None) -> None:
    from contextlib import nullcontext

    from registry.importers.pipeline import ImportFailed, run_import

    def progress(seen: int, rate: float) -> None:
        click.echo(f"\rimported {seen:,} records ({rate:,.0f}/s)", err=True, nl=False)

    target = rejects_path.open("w", encoding="utf-8") if rejects_path else nullcontext()
    with target as rejects:
        try:
            summary = run_import(_state(), path, organization_id, fmt,  # type: ignore[arg-type]
                                 principal=_operator(), suborgs=suborgs, batch_size=batch_size,
                                 rejects=rejects, progress=progress)
        except ImportFailed as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            click.echo("", err=True)
    if rejects_path is None:
        for position, external_id, reasons in summary.rejected:
            click.echo(f"rejected #{position} {external_id or ''}: {'; '.join(reasons)}",
                       err=True)
    else:  # the records are in the file: here, how often each reason occurred (all of them)
        from collections import Counter

        tally = Counter(reason for _, _, reasons in summary.rejected for reason in reasons)
        for reason, count in tally.most_common():
            click.echo(f"{count:>7}  {reason}", err=True)
    click.echo(json.dumps({"created": summary.created, "updated": summary.updated,
                           "unchanged": summary.unchanged, "rejected": len(summary.rejected),
                           **({"rejects_file": str(rejects_path)} if rejects_path else {})}))


@cli.group("log", help="The transparency log.")
def log_group() -> None:
    pass


@log_group.command("key", help="Print the verifier key auditors use.")
def log_key() -> None:
    from registry.bootstrap import load_signer

    click.echo(load_signer(_settings()).verifier_key)


@log_group.command("checkpoint", help="Sign a checkpoint now if the tree grew; print it.")
def log_checkpoint() -> None:
    state = _state()
    with state.db.write() as session:
        state.log.sign_checkpoint_if_grown(session)
    with state.db.read() as session:
        latest = state.log.latest_checkpoint(session)
    click.echo(latest.note if latest else "no checkpoint yet (empty log)")


@log_group.command("rotate-key", help="Rotate the log signing key: a statement signed by the "
                                      "old key, logged as a leaf and sent to the witnesses; "
                                      "the old key is kept (0600) for verification only.")
def log_rotate_key() -> None:
    from registry.federation.member import deliver_rotations
    from registry.federation.runtime import federation
    from registry.log_rotation import RotationRefused, rotate_log_key

    settings = _settings()
    state = _state()
    try:
        outcome = rotate_log_key(state, Path(settings.log_key_file or ""))
    except RotationRefused as exc:
        raise click.ClickException(str(exc)) from None
    if outcome.leaf_index is None:
        click.echo("completed an interrupted rotation")
    else:
        click.echo(f"rotation recorded as leaf {outcome.leaf_index}; old key kept in "
                   f"{outcome.retired_file}")
    click.echo(f"old key: {outcome.old_key}\nnew key: {outcome.new_key}")
    if outcome.checkpoint_size is not None:
        click.echo(f"checkpoint at size {outcome.checkpoint_size} signed with the new key")
    for name, result in deliver_rotations(federation(state).witnesses,
                                          [outcome.statement]).items():
        click.echo(f"witness {name}: {result}")
    click.echo(outcome.statement, nl=False)


@log_group.command("audit", help="Re-derive the whole log and catalogue from the entries now "
                                 "and list any mismatch; --acknowledge closes open alarms.")
@click.option("--acknowledge", is_flag=True,
              help="After restoring the database: close the open self-audit alarms so writes "
                   "and checkpoints resume (refused while the full audit still finds a "
                   "mismatch).")
@click.option("--by", "who", default="cli:operator", show_default=True,
              help="Who acknowledges (recorded with the alarms).")
def log_audit(acknowledge: bool, who: str) -> None:
    from anchoring.log_store import open_alarms
    from anchoring.self_audit import acknowledge_alarms
    from registry.bootstrap import build_self_audit

    state = _state()
    findings = build_self_audit(state).run_full()
    with state.db.read() as session:
        alarms = open_alarms(session, 1000)
    for alarm in alarms:
        click.echo(f"open alarm #{alarm.id} {alarm.detected_at:%Y-%m-%dT%H:%M:%SZ} "
                   f"{alarm.kind} at leaf {alarm.leaf_index}: {alarm.detail}")
    for finding in findings:
        click.echo(f"mismatch now: {finding.kind} at leaf {finding.leaf_index}: "
                   f"{finding.detail}")
    if findings:
        raise click.ClickException(f"{len(findings)} mismatch(es) remain; restore the "
                                   "database from a backup, then run this again")
    click.echo("full audit: the stored log and catalogue match their entries")
    if acknowledge:
        with state.db.write() as session:
            closed = acknowledge_alarms(session, who)
        click.echo(f"acknowledged {closed} alarm(s); writes and checkpoints resume")
    elif alarms:
        raise click.ClickException("alarms are open: run `ndr log audit --acknowledge`")


@cli.group("anchor", help="Anchoring checkpoints on a chain (or the local journal).")
def anchor_group() -> None:
    pass


@anchor_group.command("run", help="Run the anchor worker (one active across hosts: a lease).")
@click.option("--once", is_flag=True, help="One pass, then exit (for cron or a check).")
def anchor_run(once: bool) -> None:
    import signal
    import threading

    from registry.bootstrap import build_anchor_worker

    worker = build_anchor_worker(_state())
    if once:
        report = worker.run_once()
        click.echo(json.dumps(report.__dict__, default=str))
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"anchor worker {worker.worker_id} on {worker.backend.name}; epoch "
               f"{worker.epoch_seconds:g} s", err=True)
    worker.run_forever(stop)


@anchor_group.command("status", help="Recent anchors, the lease holder, the journal check.")
@click.option("--limit", default=10, show_default=True)
def anchor_status(limit: int) -> None:
    import time as _time

    from anchoring.anchor_store import lease_holder, list_anchors
    from anchoring.anchor_worker import LEASE_NAME

    state = _state()
    with state.db.read() as session:
        holder = lease_holder(session, LEASE_NAME, int(_time.time() * 1000))
        size = state.log.size(session)
        latest = state.log.latest_checkpoint(session)
        anchors = list_anchors(session, limit=limit)
    click.echo(f"log size {size}; latest checkpoint {latest.size if latest else 0}; "
               f"lease holder {holder or 'none'}")
    for a in anchors:
        click.echo(f"{a['status']:<8} size {a['size']:<8} {a['backend']:<13} "
                   f"tx {a.get('tx_id') or '-'} block {a.get('block_number') or '-'}")


@anchor_group.command("deploy", help="Deploy RegistryAnchor to an EVM chain; print its address.")
@click.option("--rpc", "rpc_url", required=True, help="JSON-RPC URL of the chain.")
@click.option("--key-file", required=True, type=click.Path(path_type=Path),
              help="Owner key file (0600); created if missing.")
def anchor_deploy(rpc_url: str, key_file: Path) -> None:
    from anchoring.anchor_backends.evm import (
        deploy_contract,
        load_account,
        web3_for,
        write_new_key_file,
    )

    account = load_account(key_file) if key_file.exists() else write_new_key_file(key_file)
    w3 = web3_for(rpc_url)
    address = deploy_contract(w3, account)
    click.echo(f"RegistryAnchor deployed at {address} (owner and submitter "
               f"{account.address}); set NDR_EVM_CONTRACT={address}")


@cli.group("search", help="The search index.")
def search_group() -> None:
    pass


@search_group.command("reindex", help="Rebuild the index from the catalogue (no downtime).")
def search_reindex() -> None:
    from registry.datasets import search_sync

    state = _state()
    if state.search.name == "elasticsearch":
        import time

        from search import feed
        from search.elasticsearch_backend import reindex
        from search.engine.clients import engine_message

        try:
            with state.db.read() as session:
                # the feed head before the documents: every row up to it is in the new index
                head = feed.head(session)
                index = reindex(state.search.client, search_sync.documents(session),
                                index_prefix=state.search.index_prefix)
            with state.db.write() as session:
                feed.advance(session, state.search.consumer, head, int(time.time() * 1000))
        except Exception as exc:  # the engine's own words, not a traceback
            raise click.ClickException(f"reindex failed, the alias is unchanged: "
                                       f"{engine_message(exc)}") from None
        click.echo(f"built {index} and switched the alias to it")
        return
    if state.search.name == "tantivy":
        count = search_sync.reindex(None, state.search)  # type: ignore[arg-type]
    else:
        with state.db.write() as session:
            count = search_sync.reindex(session, state.search)
    click.echo(f"re-indexed {count} datasets")


@search_group.command("check", help="Compare the index with the catalogue; --repair fixes it. "
                      "With a search cluster, first tries the pending outbox once and reports "
                      "what the engine refused, in the engine's words.")
@click.option("--repair", is_flag=True)
def search_check(repair: bool) -> None:
    from registry.datasets import search_sync

    state = _state()
    extra: dict[str, object] = {}
    if state.search.name == "elasticsearch":
        from search import elasticsearch_backend as es

        health = state.search.cluster_health()
        extra = {"engine": state.search.flavour, "cluster": health.status,
                 "nodes": health.nodes}
        if health.error:
            with state.db.read() as session:
                lag = es.outbox_lag(session, state.search.consumer)
            click.echo(json.dumps({**extra, "error": health.error, "outbox_rows": lag.rows,
                                   "outbox_oldest_seconds": round(lag.oldest_seconds)},
                                  ensure_ascii=False))
            raise SystemExit(1)
        drained = es.drain_outbox(state.db.write, state.search.client,
                                  index_prefix=state.search.index_prefix)
        if drained.settled:
            state.search.client.refresh(es.alias_name(state.search.index_prefix))
        with state.db.read() as session:
            lag = es.outbox_lag(session, state.search.consumer)
            report = es.check(state.search.client, search_sync.documents(session),
                              index_prefix=state.search.index_prefix)
            if repair and not report.clean:
                es.repair(state.search.client, search_sync.documents(session), report,
                          index_prefix=state.search.index_prefix)
        extra |= {"outbox_rows": lag.rows, "outbox_oldest_seconds": round(lag.oldest_seconds),
                  "refused": [{"dataset_id": f.dataset_id, "op": f.op, "error": f.message}
                              for f in drained.failures[:20]]}
    else:
        with state.db.write() as session:
            report = search_sync.drift(session, state.search)
            if repair and not report.clean:
                search_sync.repair(session, state.search, report)
        if repair and not report.clean and state.search.name == "tantivy":
            # apply the repair from the feed now (None: a running indexer holds the lease
            # and applies it within its next step)
            while state.search.index_step():
                pass
    click.echo(json.dumps({"missing": len(report.missing), "stale": len(report.stale),
                           "extra": len(report.extra), "repaired": repair and not report.clean,
                           **extra}, ensure_ascii=False))
    if (not report.clean and not repair) or extra.get("refused"):
        raise SystemExit(1)


@search_group.command("indexer", help="Apply the search change feed to this host's Tantivy "
                      "index (the web processes do this too; a lease keeps one writer).")
def search_indexer() -> None:
    import signal
    import threading

    state = _state()
    if state.search.name != "tantivy":
        raise click.ClickException(f"NDR_SEARCH_BACKEND is {state.search.name}, not tantivy")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    state.search.run(stop)


@cli.command("sequencer", help="Batch the publishes of every web worker on one Unix socket "
             "(deploy/gunicorn.conf.py starts it; workers record writes themselves while it "
             "is not there).")
@click.option("--socket", "socket_path", type=click.Path(path_type=Path), default=None,
              help="default: NDR_SEQUENCER_SOCKET, else var/publish-sequencer.sock")
def sequencer(socket_path: Path | None) -> None:
    import signal
    import threading

    from registry.datasets.sequencer_socket import SequencerServer, socket_key
    from registry.datasets.sequencer_socket import socket_path as default_path

    state = _state()
    settings = state.settings
    if state.sequencer is None:
        raise click.ClickException("NDR_PUBLISH_BATCH is off: there is nothing to sequence")
    server = SequencerServer(state.sequencer, socket_path or default_path(settings),
                             socket_key(settings))

    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    server.start()
    stopping.wait()
    server.stop()  # writes still queued are answered 503 (retry); none is half-written
    state.stop()


@search_group.command("prune", help="Delete change-feed rows every index has applied.")
def search_prune() -> None:
    from search import feed

    state = _state()
    with state.db.write() as session:
        removed = feed.prune(session)
        positions = feed.consumer_positions(session)
    click.echo(json.dumps({"removed": removed, "consumers": positions}))


@search_group.command("outbox", help="Feed the search cluster from the transactional outbox.")
def search_outbox() -> None:
    import signal
    import threading

    state = _state()
    if state.search.name != "elasticsearch":
        raise click.ClickException("the outbox feeds a search cluster; NDR_SEARCH_BACKEND is "
                                   f"{state.search.name}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    state.search.run_outbox(state.db.write, stop=stop)


@cli.command("serve", help="Serve with gunicorn (production-style) on the given address.")
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=2, show_default=True)
def serve(bind: str, workers: int) -> None:
    import os

    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--bind", bind,  # noqa: S606
                               "--workers", str(workers), "--config",
                               str(Path(__file__).resolve().parents[1] / "deploy" /
                                   "gunicorn.conf.py"), "app:create_app()"])


def _add_federation() -> None:
    from registry.federation.cli import federation_group

    cli.add_command(federation_group)


_add_federation()


if __name__ == "__main__":
    raise SystemExit(main())
