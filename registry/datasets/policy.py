"""Who may see which dataset, and which version: the registry's one statement of the rules.

Every read path asks here — the JSON API, the CKAN API, DCAT, the portal pages, organisation
counts — and the search engines get the same rules as a `search.Viewer` built here, which each
engine turns into its own filter. A new read path therefore cannot get visibility wrong by
writing its own condition; before this module the rules lived in six places and organisation
counts disagreed with search (F14: they counted government-only entries for anonymous readers).

The rules:

* A **draft** (and a never-published draft that was discarded) is seen only by members of the
  dataset's own organisation (and the operator).
* A **government-only** released version is seen by any signed-in government user.
* A **public** released version (published or withdrawn) is seen by everyone.
* Which version a reader gets: members get the latest version (their draft on top of a
  published dataset included); everyone else gets the released one.
* **Listing** (search, counts, exports): a dataset is listed by the version its search
  document holds — the released one, else the never-published draft. Published entries are
  listed; withdrawn ones only when asked for; drafts only for their organisation's members
  (never in the exports, which carry released entries only).
* The operator sees every draft when it asks for one, but lists like any government user:
  `search.Viewer` has no "every organisation" form (a search-side change would add one).
* A **mirrored** dataset (a hub's copy of a member's public entry, versions `federated.*`)
  whose publisher later made it government-only (or hid it in a salted entry) is
  **restricted**: the hub records the member's restricting leaf as a `federated.restricted`
  version and nobody on the hub sees any version of it any more, nor lists it. The hub never
  held the restricted metadata and must not keep showing the old public one as if it were
  still public; its provenance (the member's leaves and proofs) stays.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from registry.auth.principal import Principal
from registry.datasets.models import Dataset, DatasetVersion, State, Visibility
from registry.organizations.models import Role
from search import Viewer

DISCARDED = "dataset.discarded"  # the change of a never-published draft that was withdrawn
FEDERATED = "federated."  # prefix of the changes of mirrored versions (a hub's copies)
RESTRICTED = "federated.restricted"  # a mirrored dataset its publisher made non-public
RESTRICTED_NOTE = {"en": "The publisher restricted this dataset: it is no longer public.",
                   "zh": "发布方已限制此数据集，它已不再公开。"}


def is_member(principal: Principal | None, organization_id: str) -> bool:
    """A member (any role) of the organisation itself, or the operator."""
    return principal is not None and principal.has_role_in(organization_id, Role.MEMBER)


def is_government_reader(principal: Principal | None) -> bool:
    """Every credential this registry issues belongs to a government user or department."""
    return principal is not None


# ---------------------------------------------------------------- one dataset


def is_restricted(dataset: Dataset, version: DatasetVersion) -> bool:
    """A mirrored version of a dataset its publisher restricted (see the module's rules).

    A hub mirrors only public entries, so a mirrored dataset becomes government-only on the
    hub only through the member's restricting leaf."""
    return version.change == RESTRICTED or (
        version.change.startswith(FEDERATED) and dataset.visibility == Visibility.GOVERNMENT)


def can_see_version(principal: Principal | None, dataset: Dataset,
                    version: DatasetVersion) -> bool:
    """May this reader see this version of this dataset?"""
    if is_restricted(dataset, version):
        return False
    if version.state == State.DRAFT or version.change == DISCARDED:
        return is_member(principal, dataset.organization_id)
    if version.visibility == Visibility.GOVERNMENT:
        return is_government_reader(principal)
    return True


def shown_version_number(principal: Principal | None, dataset: Dataset) -> int | None:
    """The version a reader gets for "the dataset": members see their latest work, everyone
    else the released version (None: nothing released yet)."""
    if is_member(principal, dataset.organization_id):
        return dataset.current_version
    return dataset.released_version


# ---------------------------------------------------------------- lists and counts


def viewer_for(principal: Principal | None) -> Viewer:
    """The search engines' form of these rules for one reader (see `search.Viewer`)."""
    if not is_government_reader(principal):
        return Viewer.anonymous()
    assert principal is not None
    own = [principal.organization_id] if principal.organization_id else []
    return Viewer.government_user(own)


def listed_version_number() -> ColumnElement[int]:
    """The version a dataset is listed (and indexed) by: the released one, else the draft."""
    return func.coalesce(Dataset.released_version, Dataset.current_version)


def listed_condition(viewer: Viewer, *, include_withdrawn: bool = False,
                     drafts: bool = True) -> ColumnElement[bool]:
    """SQL for "listed for this viewer", over `Dataset` joined to its listed `DatasetVersion`
    (`listed_versions` builds that join). It reads the same `Viewer` the search engines get,
    so a count or an export can never disagree with search."""
    states = [State.PUBLISHED.value] + ([State.WITHDRAWN.value] if include_withdrawn else [])
    released = and_(DatasetVersion.state.in_(states),
                    DatasetVersion.change.not_in([DISCARDED, RESTRICTED]))
    if not viewer.government:
        released = and_(released, DatasetVersion.visibility == Visibility.PUBLIC.value)
    if not drafts or not viewer.organization_ids:
        return released
    return or_(released, and_(DatasetVersion.state == State.DRAFT.value,
                              Dataset.organization_id.in_(sorted(viewer.organization_ids))))


def listed_versions(principal: Principal | None, *, include_withdrawn: bool = False,
                    drafts: bool = True) -> Select[tuple[Dataset, DatasetVersion]]:
    """Datasets listed for this reader, each with its listed version (add order and paging)."""
    return (select(Dataset, DatasetVersion)
            .join(DatasetVersion, and_(DatasetVersion.dataset_id == Dataset.id,
                                       DatasetVersion.version == listed_version_number()))
            .where(listed_condition(viewer_for(principal),
                                    include_withdrawn=include_withdrawn, drafts=drafts)))


def released_versions(principal: Principal | None) -> Select[tuple[Dataset, DatasetVersion]]:
    """What the exports carry (DCAT catalogue, CKAN package_list): released, published entries
    this reader may see; never drafts."""
    return listed_versions(principal, drafts=False)


def organization_counts(session: Session, principal: Principal | None) -> dict[str, int]:
    """Datasets each organisation itself lists for this reader (what its search shows,
    sub-organisations not included)."""
    query = (select(Dataset.organization_id, func.count())
             .join(DatasetVersion, and_(DatasetVersion.dataset_id == Dataset.id,
                                        DatasetVersion.version == listed_version_number()))
             .where(listed_condition(viewer_for(principal)))
             .group_by(Dataset.organization_id))
    return {org_id: count for org_id, count in session.execute(query)}
