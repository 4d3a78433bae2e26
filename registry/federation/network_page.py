"""The portal's network page: the hub, its members and harvested sources as a server-rendered
SVG drawing (no JavaScript), each member with its size, last verified checkpoint, lag, cosigner
and alarms, and a chart of each member's log size over time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, render_template
from markupsafe import Markup, escape
from sqlalchemy import select

from registry.federation.harvest import LABEL
from registry.federation.models import (
    FederationMember,
    HarvestSource,
    MemberStatus,
    WitnessedCheckpoint,
)
from registry.federation.runtime import federation
from registry.http import registry_state
from registry.timefmt import utc_now

network = Blueprint("network", __name__)
OFFLINE_AFTER = timedelta(minutes=5)
_PALETTE = ("#1f6feb", "#2da44e", "#bf8700", "#8250df", "#cf222e", "#0a7d91", "#953800")
_W, _H = 760, 440


@dataclass(frozen=True)
class MemberView:
    origin: str
    size: int
    verified_at: datetime | None
    seen_at: datetime | None
    status: str  # ok, offline, alarm, removed
    detail: str
    history: list[tuple[datetime, int]]
    mirrored: int


def _status(member: FederationMember, now: datetime) -> tuple[str, str]:
    if member.status == MemberStatus.REMOVED:
        return "removed", "removed from the trust configuration; records kept"
    if member.alarm:
        return "alarm", member.alarm
    if member.last_seen_at is None or now - member.last_seen_at > OFFLINE_AFTER:
        return "offline", member.last_error or "not heard from recently"
    return "ok", member.last_error or "verified"


def _members() -> list[MemberView]:
    state = registry_state()
    now = utc_now()
    with state.db.read() as session:
        rows = session.scalars(select(FederationMember).order_by(FederationMember.origin)).all()
        history: dict[str, list[tuple[datetime, int]]] = {}
        for origin, size, created in session.execute(
                select(WitnessedCheckpoint.origin, WitnessedCheckpoint.size,
                       WitnessedCheckpoint.created_at).order_by(WitnessedCheckpoint.created_at)):
            history.setdefault(origin, []).append((created, int(size)))
        views = []
        for m in rows:
            status, detail = _status(m, now)
            views.append(MemberView(m.origin, int(m.witnessed_size), m.witnessed_at,
                                    m.last_seen_at, status, detail,
                                    history.get(m.origin, [])[-500:], int(m.mirrored_size)))
    return views


_COLOURS = {"ok": "#2da44e", "offline": "#bf8700", "alarm": "#cf222e", "removed": "#8c959f"}


def _text(x: float, y: float, value: object, *, size: int = 12, anchor: str = "middle",
          weight: str = "normal", fill: str = "#1f2328") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{escape(str(value))}</text>')


def network_svg(members: list[MemberView], sources: list[str], hub_name: str,
                witness: str) -> Markup:
    """The drawing: hub in the middle, members on a circle, harvested sources below."""
    cx, cy, radius = _W / 2, 200, 150
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" role="img" '
             f'aria-labelledby="net-title" width="100%">',
             f'<title id="net-title">{escape(hub_name)}: {len(members)} members</title>']
    count = max(len(members), 1)
    for i, member in enumerate(members):
        angle = -math.pi / 2 + 2 * math.pi * i / count
        x, y = cx + radius * math.cos(angle) * 1.6, cy + radius * math.sin(angle)
        colour = _COLOURS[member.status]
        dash = ' stroke-dasharray="6 4"' if member.status != "ok" else ""
        parts.append(f'<line x1="{cx}" y1="{cy}" x2="{x:.1f}" y2="{y:.1f}" stroke="{colour}" '
                     f'stroke-width="2"{dash}/>')
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="26" fill="#ffffff" '
                     f'stroke="{colour}" stroke-width="4"/>')
        parts.append(_text(x, y + 4, f"{member.size:,}", size=11, weight="bold"))
        parts.append(_text(x, y + 42, member.origin, size=11))
        when = member.verified_at.strftime("%Y-%m-%d %H:%M") if member.verified_at else "—"
        parts.append(_text(x, y + 56, f"{member.status} · verified {when}", size=10,
                           fill=colour))
    parts.append(f'<circle cx="{cx}" cy="{cy}" r="40" fill="#0a3069" stroke="#ffffff" '
                 f'stroke-width="3"/>')
    parts.append(_text(cx, cy - 2, "hub", size=13, weight="bold", fill="#ffffff"))
    parts.append(_text(cx, cy + 14, f"{len(members)} members", size=10, fill="#ffffff"))
    parts.append(_text(cx, cy + 58, hub_name, size=11, weight="bold"))
    parts.append(_text(cx, cy + 72, f"cosigner {witness}", size=10, fill="#57606a"))
    for i, url in enumerate(sources[:6]):
        x = 20 + i * (_W - 40) / max(min(len(sources), 6), 1)
        parts.append(f'<rect x="{x:.1f}" y="{_H - 46}" width="110" height="34" rx="4" '
                     f'fill="#f6f8fa" stroke="#8c959f" stroke-dasharray="3 3"/>')
        parts.append(_text(x + 55, _H - 32, url[:22], size=9))
        parts.append(_text(x + 55, _H - 19, LABEL, size=7, fill="#57606a"))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value inside went through escape()


def history_svg(members: list[MemberView]) -> Markup:
    """Log size of each member over time, one polyline each, from the checkpoints cosigned."""
    points = [p for m in members for p in m.history]
    width, height, pad = _W, 240, 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" aria-labelledby="hist-title" width="100%">',
             '<title id="hist-title">Entries per member over time</title>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - 10}" y2="{height - pad}" '
             'stroke="#8c959f"/>',
             f'<line x1="{pad}" y1="10" x2="{pad}" y2="{height - pad}" stroke="#8c959f"/>']
    if points:
        t0 = min(t for t, _ in points)
        t1 = max(t for t, _ in points)
        span = max((t1 - t0).total_seconds(), 1.0)
        top = max(s for _, s in points) or 1

        def xy(t: datetime, s: int) -> str:
            x = pad + (width - pad - 20) * (t - t0).total_seconds() / span
            y = height - pad - (height - pad - 20) * s / top
            return f"{x:.1f},{y:.1f}"

        for i, member in enumerate(m for m in members if m.history):
            colour = _PALETTE[i % len(_PALETTE)]
            coords = " ".join(xy(t, s) for t, s in member.history)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                         'stroke-width="2"/>')
            parts.append(_text(width - 12, 20 + 14 * i, member.origin, size=10, anchor="end",
                               fill=colour))
        parts.append(_text(pad - 6, 20, f"{top:,}", size=10, anchor="end"))
        parts.append(_text(pad - 6, height - pad, "0", size=10, anchor="end"))
        parts.append(_text(pad, height - pad + 16, t0.strftime("%Y-%m-%d %H:%M"), size=10,
                           anchor="start"))
        parts.append(_text(width - 10, height - pad + 16, t1.strftime("%Y-%m-%d %H:%M"),
                           size=10, anchor="end"))
    else:
        parts.append(_text(width / 2, height / 2, "no member checkpoint cosigned yet"))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value inside went through escape()


@network.get("/network")
def network_page() -> str:
    state = registry_state()
    members = _members()
    with state.db.read() as session:
        sources = [s.url for s in session.scalars(select(HarvestSource).order_by(
            HarvestSource.id))]
    witness = federation(state).witness.signer.name
    return render_template("federation_network.html", members=members, sources=sources,
                           label=LABEL, drawing=network_svg(members, sources, state.log.origin,
                                                            witness),
                           chart=history_svg(members))
