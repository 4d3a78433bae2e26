"""Organisations form a tree (ministry → bureau, province → city); members hold one role each."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.database import Base
from registry.timefmt import utc_now


class OrganizationKind(StrEnum):
    MINISTRY = "ministry"
    BUREAU = "bureau"
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    AGENCY = "agency"
    OTHER = "other"


class Role(StrEnum):
    """Roles ordered by what they may do; OPERATOR runs the registry itself."""

    MEMBER = "member"      # may read the organisation's drafts and government-only entries
    EDITOR = "editor"      # may publish, update and withdraw the organisation's datasets
    ADMIN = "admin"        # editor + manages members and API tokens
    OPERATOR = "operator"  # registry operator: creates organisations, acts anywhere


ROLE_RANK = {Role.MEMBER: 1, Role.EDITOR: 2, Role.ADMIN: 3, Role.OPERATOR: 4}


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str | None] = mapped_column(String(300))
    name_en: Mapped[str | None] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20), default=OrganizationKind.OTHER)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True)
    region_code: Mapped[str | None] = mapped_column(String(12))
    description: Mapped[str | None] = mapped_column(Text)
    homepage: Mapped[str | None] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    parent: Mapped[Organization | None] = relationship(remote_side=[id], lazy="joined",
                                                       join_depth=4)

    @property
    def display_name(self) -> str:
        return self.name_zh or self.name_en or self.id

    def ancestry(self) -> list[Organization]:
        """This organisation and its ancestors, root first (publisher facets include sub-orgs)."""
        chain: list[Organization] = []
        node: Organization | None = self
        while node is not None and len(chain) < 16:
            chain.append(node)
            node = node.parent
        return list(reversed(chain))


class User(Base):
    """A person who signs in to the portal; API tokens may also belong to one."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(300), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(300))
    is_operator: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Membership(Base):
    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
