"""Account lockout after repeated failed sign-ins, shared by every worker through the database.

Rate limits (Flask-Limiter, per client and per account) slow a guesser down; the lockout stops
one: after LOCKOUT_THRESHOLD consecutive failures an account refuses every sign-in, the right
password included, for LOCKOUT_MINUTES. Failures are counted per e-mail address typed, whether
or not a user has it, so the answer never reveals which addresses exist. A successful sign-in
clears the count.
"""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from registry.auth.models import SigninFailures
from registry.timefmt import utc_now

LOCKOUT_THRESHOLD = int(os.environ.get("NDR_SIGNIN_LOCKOUT_FAILURES", "10"))
LOCKOUT_MINUTES = int(os.environ.get("NDR_SIGNIN_LOCKOUT_MINUTES", "15"))


def account_key(email: str) -> str:
    return email.strip().lower()[:300]


def locked_for_seconds(db: Session, email: str) -> int:
    """Seconds the account stays locked (0: not locked)."""
    row = db.get(SigninFailures, account_key(email))
    if row is None or row.locked_until is None:
        return 0
    remaining = (row.locked_until - utc_now()).total_seconds()
    return max(0, int(remaining + 0.999))


def record_failure(db: Session, email: str) -> int:
    """Count one failure; lock the account when the threshold is reached. Returns the seconds
    it is now locked for (0 if not locked). Each step is one atomic statement (an upsert), so
    concurrent failures on several workers are all counted and never collide."""
    now = utc_now()
    key = account_key(email)
    table = SigninFailures.__table__
    db.execute(update(table).where(table.c.account == key, table.c.locked_until <= now)
               .values(failures=0, locked_until=None))  # the last lock ran out: count afresh
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(insert(table).values(account=key, failures=1, last_failure_at=now)
               .on_conflict_do_update(index_elements=["account"],
                                      set_={"failures": table.c.failures + 1,
                                            "last_failure_at": now}))
    db.execute(update(table).where(table.c.account == key, table.c.locked_until.is_(None),
                                   table.c.failures >= LOCKOUT_THRESHOLD)
               .values(locked_until=now + timedelta(minutes=LOCKOUT_MINUTES)))
    db.expire_all()
    return locked_for_seconds(db, email)


def record_success(db: Session, email: str) -> None:
    db.execute(delete(SigninFailures).where(SigninFailures.account == account_key(email)))


def unlock(db: Session, email: str) -> None:
    """What an operator runs for a locked-out officer (`ndr user unlock`)."""
    record_success(db, email)
