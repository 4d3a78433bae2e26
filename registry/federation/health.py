"""Federation figures for /metrics and alarms for /readyz: a proven fork is an alarm that an
operator must see, but it does not make the hub unready (it keeps serving everyone else)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.federation.models import FederationMember, MemberStatus, WitnessEvidence


def federation_alarms(session: Session) -> dict[str, str]:
    rows = session.execute(select(FederationMember.origin, FederationMember.alarm).where(
        FederationMember.alarm.is_not(None))).all()
    return {origin: alarm for origin, alarm in rows}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def federation_metrics(session: Session) -> list[str]:
    members = session.scalars(select(FederationMember).where(
        FederationMember.status == MemberStatus.ACTIVE)).all()
    evidence = session.scalar(select(func.count()).select_from(WitnessEvidence)) or 0
    lines = ["# HELP ndr_federation_members Member logs this hub follows.",
             "# TYPE ndr_federation_members gauge",
             f"ndr_federation_members {len(members)}",
             "# HELP ndr_federation_alarm 1 when a member is proven to have forked.",
             "# TYPE ndr_federation_alarm gauge"]
    lines += [f'ndr_federation_alarm{{origin="{_label(m.origin)}"}} {1 if m.alarm else 0}'
              for m in members]
    lines += ["# HELP ndr_federation_witnessed_size Size of the member checkpoint last cosigned.",
              "# TYPE ndr_federation_witnessed_size gauge"]
    lines += [f'ndr_federation_witnessed_size{{origin="{_label(m.origin)}"}} '
              f"{m.witnessed_size}" for m in members]
    lines += ["# HELP ndr_federation_evidence Fork evidence records kept.",
              "# TYPE ndr_federation_evidence gauge", f"ndr_federation_evidence {evidence}"]
    return lines
