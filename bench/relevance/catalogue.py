"""The relevance set: a Chinese catalogue built from real names, the real US data.json corpus, and
queries judged per failure class of issue 11 (how it is built: bench/relevance/README.md).

Judgments are decided here, from the entries' own text and labels, never from an engine's
answers, so the same set measures any engine. Everything is deterministic (fixed seeds).
"""

from __future__ import annotations

import bisect
import functools
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REGIONS = HERE / "regions.tsv"
VOCABULARY = HERE / "vocabulary.json"
QUERIES = HERE / "queries.json"

CLASSES = {
    "department": "1 department name",
    "topic": "2 topic / classification",
    "compound": "3 compound word",
    "whole_word": "4 whole word vs fragment",
    "repeated": "5 repeated text",
    "english_exact": "6 English exact vs prefix",
}
_WORD_RE = re.compile(r"[a-z]+")
_STOPWORDS = frozenset(["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in",
                        "is", "it", "of", "on", "or", "the", "to", "with", "data", "dataset",
                        "datasets"])


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    province_code: str

    @property
    def is_province(self) -> bool:
        """A province whose cities publish; the four municipalities publish themselves."""
        return self.code == self.province_code and not self.name.endswith("市")


@dataclass(frozen=True)
class Entry:
    """One catalogue entry as the source file has it; `key` is its external id."""

    key: str
    root: str  # the organisation the file is imported into
    title: str
    description: str
    publisher: str
    keywords: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # 资源分类 类 and 项, 所属行业, 主题
    classification: tuple[str, ...] = ()
    industry: str | None = None
    theme: str | None = None
    public: bool = True

    @property
    def text(self) -> str:
        """What relevance rules read: the entry's own words (not its labels or publisher)."""
        return " ".join((self.title, self.description, *self.keywords)).casefold()


@dataclass(frozen=True)
class JudgedQuery:
    q: str
    relevant: frozenset[str]
    fragments: frozenset[str] = field(default_factory=frozenset)  # class 4: boundary-only


def load_regions(path: Path = REGIONS) -> list[Region]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    return [Region(code, name, province) for code, name, province in rows]


def root_org_id(region: Region) -> str:
    return f"cn-{region.code}"


def root_org_name(region: Region) -> str:
    return f"{region.name}人民政府"


def chinese_catalogue(seed: int = 11, regions: Sequence[Region] | None = None) -> list[Entry]:
    """Every publishing region × every department × every subject, twice (two record types,
    one of them sometimes dated). 15% of descriptions merely copy the title, as real portals
    do; 30% name the department, the rest do not (the department is then only in the
    publisher field)."""
    vocabulary = json.loads(VOCABULARY.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    records: list[str] = vocabulary["record_types"]
    entries: list[Entry] = []
    for region in regions if regions is not None else load_regions():
        if region.is_province:
            continue
        for dept in vocabulary["departments"]:
            publisher = f"{region.name}{dept['name']}"
            for subject, item in dept["subjects"]:
                for variant in range(2):
                    record = rng.choice(records)
                    year = rng.choice(["2021", "2022", "2023", "2024"])
                    dated = variant and rng.random() < .5
                    title = f"{year}年" * dated + f"{region.name}{subject}{record}"
                    cycle = rng.choice(["月", "季度", "年"])
                    roll = rng.random()
                    if roll < .15:
                        description = title
                    elif roll < .45:
                        description = (f"本数据由{publisher}提供，内容为{region.name}{subject}的"
                                       f"{record}，按{cycle}更新。")
                    else:
                        description = (f"{region.name}{subject}的{record}，包括名称、地址、"
                                       f"联系电话等字段，按{cycle}更新。")
                    keywords = (subject,) if rng.random() < .5 else ()
                    entries.append(Entry(
                        key=f"zh-{region.code}-{len(entries):05d}", root=root_org_id(region),
                        title=title, description=description, publisher=publisher,
                        keywords=keywords, classification=(dept["topic"], item),
                        industry=dept["industry"], theme=dept["theme"],
                        labels=(dept["topic"], item, dept["industry"], dept["theme"])))
    return entries


def ckan_package(entry: Entry) -> dict[str, Any]:
    """The entry as a CKAN portal's package_search result holds it (extras as on Chinese
    portals: 资源分类, 所属行业, 主题)."""
    extras = [{"key": "资源分类", "value": " › ".join(entry.classification)}]
    if entry.industry:
        extras.append({"key": "所属行业", "value": entry.industry})
    if entry.theme:
        extras.append({"key": "主题", "value": entry.theme})
    return {"id": entry.key, "name": entry.key, "title": entry.title, "notes": entry.description,
            "organization": {"name": entry.publisher, "title": entry.publisher},
            "tags": [{"name": k} for k in entry.keywords], "extras": extras,
            "private": not entry.public}


def write_ckan_files(entries: Iterable[Entry], directory: Path) -> dict[str, Path]:
    """One package_search response per root organisation; returns {root org id: file}."""
    by_root: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_root[entry.root].append(entry)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for root, group in by_root.items():
        path = directory / f"{root}.json"
        body = {"success": True, "result": {"count": len(group),
                                            "results": [ckan_package(e) for e in group]}}
        path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        files[root] = path
    return files


# ------------------------------------------------------------------ the US data.json corpus


def us_catalogue(source: Path) -> list[Entry]:
    """Every dataset of the real data.json files; `root` is the file's agency ("us-cms")."""
    entries: list[Entry] = []
    for path in sorted(Path(source).glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8-sig"))
        for item in document.get("dataset", []):
            identifier = item.get("identifier")
            if not isinstance(identifier, str) or not identifier.strip():
                continue
            publisher = (item.get("publisher") or {}).get("name") or ""
            keywords = item.get("keyword") or []
            entries.append(Entry(
                key=identifier.strip(), root=f"us-{path.stem}",
                title=str(item.get("title") or ""),
                description=str(item.get("description") or ""), publisher=str(publisher),
                keywords=tuple(k for k in keywords if isinstance(k, str)),
                public=str(item.get("accessLevel", "")).strip().lower() == "public"))
    counts = Counter(e.key for e in entries)
    return [e for e in entries if counts[e.key] == 1]  # a key must name one entry


# ------------------------------------------------------------------ judged queries


def _contains_all(entry: Entry, words: Sequence[str]) -> bool:
    text = entry.text
    return all(word.casefold() in text for word in words)


def department_queries(entries: Sequence[Entry], *, sample: int, seed: int = 1,
                       minimum: int = 10) -> list[JudgedQuery]:
    """A publisher's name finds its entries (publishers with at least `minimum` of them)."""
    by_publisher: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if entry.publisher:
            by_publisher[entry.publisher].add(entry.key)
    names = sorted(name for name, keys in by_publisher.items() if len(keys) >= minimum)
    chosen = random.Random(seed).sample(names, min(sample, len(names)))
    return [JudgedQuery(name, frozenset(by_publisher[name])) for name in sorted(chosen)]


def topic_queries(entries: Sequence[Entry]) -> list[JudgedQuery]:
    """Each catalogue label (资源分类 类 and 项, 所属行业, 主题) finds the entries it labels.
    项 labels that a title spells out are left out: they test the title, not the label."""
    by_label: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        for label in entry.labels:
            by_label[label].add(entry.key)
    titles = " ".join(e.title for e in entries)
    items = {e.classification[1] for e in entries if len(e.classification) > 1}
    return [JudgedQuery(label, frozenset(keys)) for label, keys in sorted(by_label.items())
            if not (label in items and label in titles)]


def compound_queries(entries: Sequence[Entry], specs: Sequence[dict[str, Any]]
                     ) -> list[JudgedQuery]:
    """A compound finds entries with the whole word or with all of its parts."""
    return [JudgedQuery(spec["q"], frozenset(
        e.key for e in entries
        if spec["q"].casefold() in e.text or _contains_all(e, spec["parts"])))
        for spec in specs]


def whole_word_queries(entries: Sequence[Entry], specs: Sequence[dict[str, Any]]
                       ) -> list[JudgedQuery]:
    """Relevant: the query as a word (one of its `whole` forms). Fragment: the characters
    occur only across a word boundary (市政 in 天津市政府)."""
    out = []
    for spec in specs:
        q = spec["q"]
        relevant = {e.key for e in entries if any(w in e.text for w in spec["whole"])}
        fragments = {e.key for e in entries if q in e.text and e.key not in relevant}
        out.append(JudgedQuery(q, frozenset(relevant), frozenset(fragments)))
    return out


def all_words_queries(entries: Sequence[Entry], specs: Sequence[dict[str, Any]]
                      ) -> list[JudgedQuery]:
    return [JudgedQuery(spec["q"], frozenset(e.key for e in entries
                                             if _contains_all(e, spec["all"])))
            for spec in specs]


def english_exact_queries(entries: Sequence[Entry], *, count: int = 30) -> list[JudgedQuery]:
    """Words of real titles that are also the beginning of *other* words (register →
    registration, port → portal). Relevant: entries whose title or keywords have the word
    itself or a form with the same Snowball stem; a prefix-only match is not relevant."""
    import snowballstemmer

    stem = functools.cache(snowballstemmer.stemmer("english").stemWord)
    words_of = {e.key: set(_WORD_RE.findall(" ".join((e.title, *e.keywords)).casefold()))
                for e in entries}
    stems_of = {key: {stem(w) for w in words} for key, words in words_of.items()}
    vocabulary = Counter(w for words in words_of.values() for w in words)
    ordered = sorted(vocabulary)
    candidates = []
    for word, titles in vocabulary.items():
        if len(word) < 4 or word in _STOPWORDS or not 3 <= titles <= 40:
            continue
        root = stem(word)
        start = bisect.bisect_right(ordered, word)
        end = bisect.bisect_left(ordered, word + "{")  # "{" sorts after every a-z
        longer = {w for w in ordered[start:end] if stem(w) != root}
        if not longer:
            continue
        distractors = sum(1 for key, words in words_of.items()
                          if root not in stems_of[key] and not words.isdisjoint(longer))
        if distractors >= 3:
            candidates.append((-distractors, word))
    out = []
    for _, word in sorted(candidates)[:count]:
        root = stem(word)
        relevant = {key for key, stems in stems_of.items() if root in stems}
        out.append(JudgedQuery(word, frozenset(relevant)))
    return out


@dataclass(frozen=True)
class RelevanceSet:
    zh: list[Entry]
    us: list[Entry]
    classes: dict[str, list[JudgedQuery]]
    natural: list[JudgedQuery]

    @property
    def entries(self) -> list[Entry]:
        return [*self.zh, *self.us]


def build_set(us_source: Path | None, *, regions: Sequence[Region] | None = None,
              department_sample: int = 40) -> RelevanceSet:
    """The whole set; without `us_source` only the Chinese half (and no English classes)."""
    specs = json.loads(QUERIES.read_text(encoding="utf-8"))
    zh = chinese_catalogue(regions=regions)
    us = [e for e in us_catalogue(us_source) if e.public] if us_source else []
    visible = [*zh, *us]
    classes = {
        "department": department_queries(zh, sample=department_sample)
        + (department_queries(us, sample=department_sample // 2) if us else []),
        "topic": topic_queries(zh),
        "compound": compound_queries(visible, specs["compound"]),
        "whole_word": whole_word_queries(visible, specs["whole_word"]),
        "repeated": all_words_queries(visible, specs["repeated"]),
    }
    if us:
        classes["english_exact"] = english_exact_queries(us)
    natural = all_words_queries(visible, specs["natural"])
    return RelevanceSet(zh, us, classes, natural)
