"""Sub-organisation ids and names for the publishers a catalogue names (`ndr import --suborgs`).

An id must match `[a-z0-9-]`, at most 64 characters (schemas/organization.schema.json), and be
*stable*: importing the same catalogue again, into this registry or another, must find the same
organisation. Folding a name to ASCII loses every Chinese character, so a Chinese department's id
is its pinyin (readable: 交通运输局 → jiaotongyunshuju) plus a short hash of the exact name (two
names that read alike, or a cut, never meet). Names without Chinese keep the plain folded id
they always had, so earlier imports keep their organisations; when that id is already taken by
an organisation of another name (a cut at 64 characters), the hashed form is used instead.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

MAX_ID = 64
HASH_CHARS = 6
_NON_ID = re.compile(r"[^a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _folded(name: str) -> str:
    return _NON_ID.sub("-", name.lower()).strip("-")


def name_hash(name: str) -> str:
    normalised = unicodedata.normalize("NFKC", name.strip())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:HASH_CHARS]


@lru_cache(maxsize=4096)
def romanised(name: str) -> str:
    """Pinyin (tone marks dropped) of the Chinese characters, other letters and digits kept;
    syllables of one word are joined, runs of other characters become '-'."""
    from pypinyin import Style, lazy_pinyin

    parts = lazy_pinyin(unicodedata.normalize("NFKC", name), style=Style.NORMAL,
                        errors=lambda text: [f" {text} "])
    return _folded(re.sub(r"\s+", "-", "".join(parts).strip()))


def _join(parent_id: str, slug: str) -> str:
    return f"{parent_id}-{slug}"[:MAX_ID].strip("-") if slug else parent_id


def suborganization_id(parent_id: str, name: str) -> str:
    """The id of the sub-organisation `name` under `parent_id` (see the module docstring)."""
    if not _CJK.search(name) and _folded(name):
        plain = _join(parent_id, _folded(name))
        if plain != parent_id:  # a parent id of 64 characters leaves no room for the name
            return plain
    return hashed_id(parent_id, name)


def hashed_id(parent_id: str, name: str) -> str:
    """`<parent>-<slug>-<hash of name>`, the slug (then the parent) cut to fit 64 characters.
    Also the way out when a plain id is taken by an organisation of another name."""
    slug = romanised(name) if _CJK.search(name) else _folded(name)
    suffix = f"-{name_hash(name)}"
    room = MAX_ID - len(suffix)
    return (_join(parent_id[:room], slug)[:room].strip("-") or parent_id[:room]) + suffix


def organization_names(name: str) -> dict[str, str]:
    """The name goes in the field of its language, so a Chinese department is named in name_zh."""
    return {"name_zh" if _CJK.search(name) else "name_en": name.strip()[:300]}
