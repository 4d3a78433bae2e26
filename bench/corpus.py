"""Deterministic test/benchmark corpus: real US federal DCAT-US catalogues, scaled up and mixed
with generated Chinese government entries.

Why generate Chinese entries: no open Chinese catalogue ships with the project, and relevance on
Chinese text (segmentation, partial words) is the point of the exercise. The vocabulary below is
modelled on Chinese open-data portals: ministries and their provincial departments, provinces and
cities, themes and the topics and record types that recur in dataset titles.

Entry ``i`` depends only on (seed, i), so any slice of a 1M corpus can be regenerated alone.
Nothing in the product imports this module; the catalogue directory is an argument.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from search.documents import SearchDocument

PROVINCES: tuple[tuple[str, str], ...] = (
    ("北京市", "Beijing"), ("上海市", "Shanghai"), ("天津市", "Tianjin"), ("重庆市", "Chongqing"),
    ("河北省", "Hebei"), ("山西省", "Shanxi"), ("辽宁省", "Liaoning"), ("吉林省", "Jilin"),
    ("黑龙江省", "Heilongjiang"), ("江苏省", "Jiangsu"), ("浙江省", "Zhejiang"),
    ("安徽省", "Anhui"), ("福建省", "Fujian"), ("江西省", "Jiangxi"), ("山东省", "Shandong"),
    ("河南省", "Henan"), ("湖北省", "Hubei"), ("湖南省", "Hunan"), ("广东省", "Guangdong"),
    ("海南省", "Hainan"), ("四川省", "Sichuan"), ("贵州省", "Guizhou"), ("云南省", "Yunnan"),
    ("陕西省", "Shaanxi"), ("甘肃省", "Gansu"), ("青海省", "Qinghai"),
    ("内蒙古自治区", "Inner Mongolia"), ("广西壮族自治区", "Guangxi"),
    ("宁夏回族自治区", "Ningxia"), ("新疆维吾尔自治区", "Xinjiang"),
)
CITIES: tuple[tuple[str, str], ...] = (
    ("杭州市", "Hangzhou"), ("南京市", "Nanjing"), ("广州市", "Guangzhou"),
    ("深圳市", "Shenzhen"), ("成都市", "Chengdu"), ("武汉市", "Wuhan"), ("西安市", "Xi'an"),
    ("苏州市", "Suzhou"), ("郑州市", "Zhengzhou"), ("长沙市", "Changsha"),
    ("青岛市", "Qingdao"), ("厦门市", "Xiamen"), ("宁波市", "Ningbo"), ("济南市", "Jinan"),
    ("合肥市", "Hefei"), ("昆明市", "Kunming"), ("贵阳市", "Guiyang"), ("南宁市", "Nanning"),
)
# (ministry zh, ministry en, provincial department suffix, theme)
MINISTRIES: tuple[tuple[str, str, str, str], ...] = (
    ("交通运输部", "Ministry of Transport", "交通运输厅", "transport"),
    ("国家卫生健康委员会", "National Health Commission", "卫生健康委员会", "health"),
    ("教育部", "Ministry of Education", "教育厅", "education"),
    ("生态环境部", "Ministry of Ecology and Environment", "生态环境厅", "environment"),
    ("农业农村部", "Ministry of Agriculture and Rural Affairs", "农业农村厅", "agriculture"),
    ("商务部", "Ministry of Commerce", "商务厅", "economy"),
    ("人力资源和社会保障部", "Ministry of Human Resources and Social Security",
     "人力资源和社会保障厅", "social"),
    ("文化和旅游部", "Ministry of Culture and Tourism", "文化和旅游厅", "culture"),
    ("应急管理部", "Ministry of Emergency Management", "应急管理厅", "safety"),
    ("自然资源部", "Ministry of Natural Resources", "自然资源厅", "resources"),
    ("住房和城乡建设部", "Ministry of Housing and Urban-Rural Development", "住房和城乡建设厅",
     "urban"),
    ("国家统计局", "National Bureau of Statistics", "统计局", "government"),
)
THEME_LABELS: dict[str, str] = {
    "transport": "交通运输", "health": "医疗卫生", "education": "教育科技",
    "environment": "生态环境", "agriculture": "农业农村", "economy": "经济建设",
    "social": "社会保障", "culture": "文化休闲", "safety": "公共安全",
    "resources": "资源能源", "urban": "城建住房", "government": "机构团体",
}
TOPICS: dict[str, tuple[tuple[str, str], ...]] = {
    "transport": (("交通事故", "traffic accidents"), ("公交线路", "bus routes"),
                  ("道路客运", "road passenger transport"), ("高速公路", "expressway"),
                  ("港口货运", "port freight"), ("停车场", "car parks"),
                  ("出租车运营", "taxi operations"), ("轨道交通", "rail transit")),
    "health": (("医疗机构", "medical institutions"), ("医院床位", "hospital beds"),
               ("疫苗接种", "vaccination"), ("药品监管", "drug supervision"),
               ("传染病疫情", "infectious disease"), ("医保定点", "insured clinics"),
               ("卫生监督", "health inspection"), ("医疗服务价格", "medical service prices")),
    "education": (("高校招生", "university admissions"),
                  ("中小学校", "primary and secondary schools"),
                  ("义务教育", "compulsory education"), ("职业教育", "vocational education"),
                  ("学前教育", "preschool education"), ("教师资格", "teacher qualifications"),
                  ("教育经费", "education funding")),
    "environment": (("空气质量", "air quality"), ("地表水水质", "surface water quality"),
                    ("污染源监测", "pollution source monitoring"), ("噪声监测", "noise monitoring"),
                    ("排污许可", "discharge permits"), ("生态保护", "ecological protection")),
    "agriculture": (("粮食产量", "grain output"), ("耕地面积", "arable land"),
                    ("农产品价格", "farm produce prices"), ("畜牧养殖", "livestock farming"),
                    ("渔业生产", "fishery production"), ("农机补贴", "farm machinery subsidies")),
    "economy": (("企业登记", "business registration"), ("进出口贸易", "import and export"),
                ("招商引资", "investment promotion"), ("市场主体", "market entities"),
                ("物价监测", "price monitoring"), ("财政收支", "fiscal revenue and spending")),
    "social": (("养老保险", "pension insurance"), ("城镇就业", "urban employment"),
               ("最低生活保障", "minimum living allowance"), ("社会救助", "social assistance"),
               ("养老机构", "elderly care institutions"), ("残疾人服务", "disability services")),
    "culture": (("旅游景区", "tourist attractions"), ("博物馆", "museums"),
                ("公共图书馆", "public libraries"), ("体育场馆", "sports venues"),
                ("文化遗产", "cultural heritage"), ("星级饭店", "star-rated hotels")),
    "safety": (("安全生产", "work safety"), ("消防设施", "fire facilities"),
               ("食品安全抽检", "food safety sampling"), ("自然灾害", "natural disasters"),
               ("应急避难场所", "emergency shelters")),
    "resources": (("水资源", "water resources"), ("矿产资源", "mineral resources"),
                  ("电力供应", "electricity supply"), ("森林资源", "forest resources"),
                  ("土地利用", "land use"), ("能源消费", "energy consumption")),
    "urban": (("住房公积金", "housing provident fund"), ("保障性住房", "affordable housing"),
              ("建筑企业资质", "construction licences"), ("城市供水", "urban water supply"),
              ("物业管理", "property management"), ("城市规划", "urban planning")),
    "government": (("人口普查", "population census"), ("行政许可", "administrative licensing"),
                   ("政务服务事项", "government services"), ("统计年鉴", "statistical yearbook"),
                   ("国民经济核算", "national accounts")),
}
RECORD_TYPES: tuple[tuple[str, str], ...] = (
    ("统计数据", "statistics"), ("名录", "directory"), ("监测数据", "monitoring data"),
    ("年度报告", "annual report"), ("信息公示", "public notices"), ("明细表", "details"),
    ("分布情况", "distribution"), ("汇总表", "summary"), ("指标", "indicators"),
    ("登记信息", "registrations"),
)
UPDATE_CYCLES = ("daily", "weekly", "monthly", "quarterly", "yearly", "irregular")
CYCLE_ZH = {"daily": "每日", "weekly": "每周", "monthly": "每月", "quarterly": "每季度",
            "yearly": "每年", "irregular": "不定期"}
FORMATS = ("CSV", "JSON", "XLSX", "XML", "PDF", "API", "SHP")
LICENSES = ("CC-BY-4.0", "CC0-1.0", "ODbL-1.0", "gov-open-1.0")
OPEN_ATTRIBUTES = ("open", "conditional", "closed")


@dataclass(frozen=True)
class RealEntry:
    title: str
    description: str
    keywords: tuple[str, ...]
    publisher: str
    agency: str
    formats: tuple[str, ...]
    license: str | None
    modified: date | None
    issued: date | None


_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _parse_date(value: object) -> date | None:
    m = _DATE_RE.search(value) if isinstance(value, str) else None
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _without_lone_surrogates(text: str) -> str:
    """Some catalogues escape broken UTF-16 (\\udc92); such text cannot be stored as UTF-8."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _clean_strings(obj: dict) -> dict:
    return {k: _without_lone_surrogates(v) if isinstance(v, str)
            else [_without_lone_surrogates(x) if isinstance(x, str) else x for x in v]
            if isinstance(v, list) else v
            for k, v in obj.items()}


def load_real_entries(source_dir: str | Path) -> list[RealEntry]:
    """Every dataset of every DCAT-US catalogue (``*.json``, BOM tolerated) in name order."""
    entries: list[RealEntry] = []
    for path in sorted(Path(source_dir).glob("*.json")):
        catalogue = json.loads(path.read_text(encoding="utf-8-sig"), object_hook=_clean_strings)
        for item in catalogue.get("dataset", []):
            title = (item.get("title") or "").strip()
            if not title:
                continue
            formats = {
                str(d.get("format") or d.get("mediaType", "").rsplit("/", 1)[-1]).upper()
                for d in item.get("distribution", []) or []
                if isinstance(d, dict)
            } - {""}
            publisher = item.get("publisher") or {}
            entries.append(RealEntry(
                title=title,
                description=(item.get("description") or "").strip(),
                keywords=tuple(k for k in item.get("keyword", []) or [] if isinstance(k, str)),
                publisher=(publisher.get("name") if isinstance(publisher, dict) else None)
                or path.stem.upper(),
                agency=path.stem,
                formats=tuple(sorted(formats)),
                license=item.get("license"),
                modified=_parse_date(item.get("modified")),
                issued=_parse_date(item.get("issued")),
            ))
    return entries


def _base(i: int, rng: random.Random) -> dict:
    state = rng.choices(("published", "draft", "withdrawn"), (92, 5, 3))[0]
    return {
        "dataset_id": f"ds-{i:07d}",
        "slug": f"dataset-{i:07d}",
        "version": rng.randint(1, 4),
        "state": state,
        "visibility": "public" if rng.random() < 0.9 else "government",
        "sharing_type": rng.choices(("unconditional", "conditional", "none"), (6, 3, 1))[0],
        "open_attribute": rng.choice(OPEN_ATTRIBUTES),
        "update_cycle": rng.choice(UPDATE_CYCLES),
        "data_grade": rng.choices(("core", "important", "general"), (1, 3, 6))[0],
        "license": rng.choice(LICENSES),
    }


def _random_day(rng: random.Random, start_year: int = 2015) -> date:
    return date(start_year, 1, 1) + timedelta(days=rng.randrange(365 * (2025 - start_year)))


def real_document(i: int, entry: RealEntry, rng: random.Random, *, vary: bool) -> SearchDocument:
    """An English document from a real entry; ``vary`` adds a region/year so copies differ."""
    doc = _base(i, rng)
    title = entry.title
    if vary:
        _, region_en = rng.choice(PROVINCES)
        title = f"{title} ({region_en}, {rng.randint(2010, 2024)})"
    modified = entry.modified or _random_day(rng)
    doc.update({
        "organization_id": f"us-{entry.agency}",
        "organization_path": ["us", f"us-{entry.agency}"],
        "publisher_names": ["United States federal government", entry.publisher],
        "title_zh": None, "title_en": title,
        "description_zh": None, "description_en": entry.description or None,
        "keywords": list(entry.keywords[:12]),
        "themes": [],
        "formats": list(entry.formats) or [rng.choice(FORMATS)],
        "license": entry.license or doc["license"],
        "region": None,
        "issued": entry.issued,
        "modified": datetime.combine(modified, datetime.min.time()) if vary else modified,
    })
    return doc  # type: ignore[return-value]


def chinese_document(i: int, rng: random.Random) -> SearchDocument:
    """A generated Chinese entry (with an English title on most), published by a provincial
    department whose parent is the national ministry."""
    doc = _base(i, rng)
    m = rng.randrange(len(MINISTRIES))
    ministry_zh, ministry_en, dept, theme = MINISTRIES[m]
    p = rng.randrange(len(PROVINCES))
    province_zh, province_en = PROVINCES[p]
    topic_zh, topic_en = rng.choice(TOPICS[theme])
    record_zh, record_en = rng.choice(RECORD_TYPES)
    year = rng.randint(2015, 2024)
    place_zh, place_en = (rng.choice(CITIES) if rng.random() < 0.4 else (province_zh, province_en))
    title_zh = rng.choice((
        f"{place_zh}{topic_zh}{record_zh}",
        f"{year}年{place_zh}{topic_zh}{record_zh}",
        f"{place_zh}{topic_zh}{record_zh}（{year}年）",
    ))
    cycle = doc["update_cycle"]
    other_zh, _ = rng.choice(TOPICS[rng.choice(tuple(TOPICS))])
    description_zh = (
        f"本数据集由{province_zh}{dept}发布，收录{place_zh}{topic_zh}相关的{record_zh}，"
        f"{CYCLE_ZH[cycle]}更新，可与{other_zh}等数据关联分析。"
    )
    title_en = f"{place_en} {topic_en} {record_en} {year}" if rng.random() < 0.7 else None
    doc.update({
        "organization_id": f"cn-{m:02d}-{p:02d}",
        "organization_path": ["cn", f"cn-{m:02d}", f"cn-{m:02d}-{p:02d}"],
        "publisher_names": [ministry_zh, ministry_en, f"{province_zh}{dept}"],
        "title_zh": title_zh, "title_en": title_en,
        "description_zh": description_zh,
        "description_en": f"{topic_en.capitalize()} {record_en} published by the {province_en} "
                          f"department of the {ministry_en}." if title_en else None,
        "keywords": [topic_zh, THEME_LABELS[theme], record_zh, place_zh],
        "themes": [theme],
        "formats": sorted(set(rng.sample(FORMATS, rng.randint(1, 3)))),
        "region": province_zh,
        "issued": date(year, 1, 1) + timedelta(days=rng.randrange(365)),
        "modified": datetime.combine(_random_day(rng, max(year, 2015)), datetime.min.time())
        + timedelta(seconds=rng.randrange(86400)),
    })
    return doc  # type: ignore[return-value]


def generate_corpus(
    source_dir: str | Path, n: int, *, seed: int = 42, chinese_share: float = 0.5,
    start: int = 0,
) -> Iterator[SearchDocument]:
    """Entries ``start`` … ``n - 1``: first every real entry once, unchanged; after that,
    Chinese entries with probability ``chinese_share`` and varied copies of real ones."""
    real = load_real_entries(source_dir)
    for i in range(start, n):
        rng = random.Random(seed * 1_000_003 + i)
        if i < len(real):
            yield real_document(i, real[i], rng, vary=False)
        elif rng.random() < chinese_share:
            yield chinese_document(i, rng)
        else:
            yield real_document(i, real[rng.randrange(len(real))], rng, vary=True)


def chinese_corpus(n: int, *, seed: int = 7) -> list[SearchDocument]:
    """``n`` generated Chinese entries only (the Chinese relevance set)."""
    return [chinese_document(i, random.Random(seed * 1_000_003 + i)) for i in range(n)]
