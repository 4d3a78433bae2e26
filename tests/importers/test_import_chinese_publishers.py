"""Chinese catalogues: department names become sub-organisations of their own (never the root),
the catalogue's classification survives the mapping, and every rejection can be written out.

Issue 11, failure classes 1 and 2 at the source, and the import fixes search needs.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from registry.importers import ImportRecord, RejectedRecord, read_records
from registry.importers.ckan import map_package
from registry.importers.publishers import hashed_id, organization_names, suborganization_id
from registry.importers.values import classification

REPO = Path(__file__).resolve().parents[2]
ORG_ID = re.compile(json.loads((REPO / "schemas" / "organization.schema.json").read_text(
    encoding="utf-8"))["properties"]["id"]["pattern"])


# ------------------------------------------------------------------ sub-organisation ids


def test_chinese_department_names_get_distinct_readable_ids() -> None:
    transport = suborganization_id("cn-120000", "天津市交通运输委员会")
    finance = suborganization_id("cn-120000", "天津市财政局")
    assert transport != finance != "cn-120000"
    assert transport.startswith("cn-120000-tianjinshijiaotongyunshuweiyuanhui-")
    assert finance.startswith("cn-120000-tianjinshicaizhengju-")
    assert ORG_ID.match(transport) and ORG_ID.match(finance)


def test_ids_are_stable_and_depend_only_on_parent_and_name() -> None:
    first = [suborganization_id("hn", n) for n in ("郑州市公安局", "郑州市民政局")]
    assert first == [suborganization_id("hn", n) for n in ("郑州市公安局", "郑州市民政局")]
    assert suborganization_id("hn", "郑州市公安局") != suborganization_id("zj", "郑州市公安局")
    # surrounding space and full-width forms do not make another department (NFKC, stripped)
    assert suborganization_id("hn", " 郑州市公安局 ") == suborganization_id("hn", "郑州市公安局")
    assert suborganization_id("hn", "统计局（NBS）") == suborganization_id("hn", "统计局(NBS)")


def test_homophones_and_cut_names_never_share_an_id() -> None:
    # 公安局 and 公安句 read the same in pinyin; the hash of the exact name keeps them apart
    assert suborganization_id("x", "市公安局") != suborganization_id("x", "市公安句")
    long_a = "省" + "交通运输" * 40 + "甲"
    long_b = "省" + "交通运输" * 40 + "乙"
    a, b = suborganization_id("x", long_a), suborganization_id("x", long_b)
    assert a != b and len(a) <= 64 and len(b) <= 64 and ORG_ID.match(a) and ORG_ID.match(b)


@pytest.mark.parametrize("name", ["——", "！！！", "Министерство финансов", "🚌🚇", "a" * 200,
                                  "交通局\u0000", "x" * 3 + "-" * 70])
def test_any_name_gives_a_valid_id(name: str) -> None:
    for parent in ("p", "p" * 64):
        org_id = suborganization_id(parent, name)
        assert ORG_ID.match(org_id), (name, org_id)
        assert org_id != parent


def test_ascii_names_keep_the_ids_earlier_imports_made() -> None:
    assert suborganization_id("us", "Food and Drug Administration") == \
        "us-food-and-drug-administration"
    assert hashed_id("us", "Food and Drug Administration").startswith(
        "us-food-and-drug-administration-")


def test_the_name_goes_in_the_field_of_its_language() -> None:
    assert organization_names("天津市财政局") == {"name_zh": "天津市财政局"}
    assert organization_names("Census Bureau") == {"name_en": "Census Bureau"}


def _jsonl(path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def _entry(external_id: str, *publisher: str, title: str = "公交线路") -> dict:  # type: ignore[type-arg]
    return {"external_id": external_id, "visibility": "public", "publisher_path": list(publisher),
            "metadata": {"title": {"zh": title}, "description": {"zh": f"{title}说明"}}}


def test_import_with_suborgs_keeps_chinese_departments_apart(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from registry.auth.principal import Principal
    from registry.importers.pipeline import run_import
    from registry.organizations.models import Role

    operator = Principal(id="test:operator", organization_id=None, role=Role.OPERATOR)

    registry.org("cn-120000", name_zh="天津市人民政府", name_en="Tianjin")
    source = _jsonl(tmp_path / "tj.jsonl", [
        _entry("a", "天津市人民政府", "天津市交通运输委员会"),
        _entry("b", "天津市交通运输委员会", title="地铁站点"),
        _entry("c", "天津市财政局", title="部门预算"),
    ])
    summary = run_import(registry.state, source, "cn-120000", "jsonl", suborgs=True,
                         principal=operator)
    assert (summary.created, summary.rejected) == (3, [])
    orgs = registry.client.get("/api/v1/organizations").get_json()
    listed = orgs["items"] if isinstance(orgs, dict) else orgs
    by_name = {o.get("name_zh"): o for o in listed}
    transport, finance = by_name["天津市交通运输委员会"], by_name["天津市财政局"]
    assert transport["id"] != finance["id"]
    assert {transport["parent"], finance["parent"]} == {"cn-120000"}
    datasets = registry.client.get("/api/v1/datasets?limit=10").get_json()["items"]
    assert {d["organization"] for d in datasets} == {transport["id"], finance["id"]}
    again = run_import(registry.state, source, "cn-120000", "jsonl", suborgs=True,
                       principal=operator)
    assert (again.created, again.unchanged) == (0, 3)  # the same departments were found again


# ------------------------------------------------------------------ classification


@pytest.mark.parametrize(("given", "expected"), [
    ("交通 › 城市交通 › 公共自行车",
     {"category": "交通", "item": "城市交通", "subitem": "公共自行车"}),
    ("交通服务/城市公交", {"category": "交通服务", "item": "城市公交"}),
    (["教育", "基础教育"], {"category": "教育", "item": "基础教育"}),
    ({"category": "卫生", "item": "医疗服务"}, {"category": "卫生", "item": "医疗服务"}),
    ("  ", None), ("a/b/c/d/e", None), ("交通/" + "长" * 101, None), (42, None),
    ("交通//公交", None),
])
def test_classification_rule(given: object, expected: dict[str, str] | None) -> None:
    assert classification(given) == expected


def test_ckan_extras_keep_the_catalogues_own_labels() -> None:
    package = {"id": "p1", "title": "天津市公交线路信息", "notes": "线路、站点和首末班时间。",
               "organization": {"title": "天津市交通运输委员会"},
               "tags": [{"name": "公交"}],
               "extras": [{"key": "资源分类", "value": "交通服务 › 城市公交"},
                          {"key": "所属行业", "value": "交通运输、仓储和邮政业"},
                          {"key": "主题", "value": "出行服务，民生服务"}]}
    record = map_package(1, package)
    assert isinstance(record, ImportRecord)
    assert record.metadata["classification"] == {"category": "交通服务", "item": "城市公交"}
    # 所属行业 is one label although it contains 、; 主题 held two, separated by a comma
    assert record.metadata["keywords"] == ["公交", "交通运输、仓储和邮政业", "出行服务",
                                           "民生服务"]
    assert record.metadata["publisher"] == {"name": {"zh": "天津市交通运输委员会"}}
    assert record.publisher_path == ("天津市交通运输委员会",)


def test_ckan_json_list_labels_and_a_bad_classification() -> None:
    package = {"id": "p2", "title": "x", "notes": "y",
               "extras": [{"key": "所属行业", "value": '["交通运输、仓储和邮政业"]'},
                          {"key": "信息资源分类", "value": "a/b/c/d/e"}]}
    record = map_package(2, package)
    assert isinstance(record, ImportRecord)
    assert record.metadata["keywords"] == ["交通运输、仓储和邮政业"]
    assert "classification" not in record.metadata  # five levels cannot be expressed


# ------------------------------------------------------------------ rejections


def test_rejections_carry_the_source_entry(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"external_id": "x", "visibility": "public", "metadata": {"title": {}}}\n'
                    "not json\n", encoding="utf-8")
    first, second = read_records(path, "jsonl")
    assert isinstance(first, RejectedRecord) and isinstance(second, RejectedRecord)
    assert first.source["external_id"] == "x"
    assert second.source == "not json"


def test_import_and_api_reject_bad_metadata_for_the_same_reason(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = {"title": {"zh": "港口"}, "description": {"zh": "说明"}, "update_cycle": "hourly",
           "colour": "red"}
    (rejected,) = read_records(_jsonl(tmp_path / "one.jsonl", [
        {"external_id": "x", "visibility": "public", "metadata": bad}]), "jsonl")
    assert isinstance(rejected, RejectedRecord)
    registry.org("port")
    response = registry.client.post("/api/v1/datasets", json={"metadata": bad},
                                    headers=registry.auth(registry.token("port")))
    assert response.status_code in (400, 422)
    api = sorted(f"{e['pointer']}: {e['detail']}" for e in response.get_json()["errors"])
    assert sorted(rejected.reasons) == api


def _ndr(var: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NDR_VAR_DIR": str(var), "DATABASE_URL": database_url,
           "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "registry.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False, timeout=180)


def test_cli_reports_every_rejection_and_writes_the_rejects_file(database_url: str,
                                                                  tmp_path: Path) -> None:
    var = tmp_path / "var"
    assert _ndr(var, database_url, "init").returncode == 0
    assert _ndr(var, database_url, "org", "create", "tj", "--name-zh", "天津市人民政府"
                ).returncode == 0
    lines = [json.dumps(_entry(f"ok-{i}", "天津市财政局", title=f"预算{i}"), ensure_ascii=False)
             for i in range(3)]
    lines += [json.dumps({"external_id": f"bad-{i}", "visibility": "public",
                          "metadata": {"title": {"zh": f"缺说明{i}"}}}, ensure_ascii=False)
              for i in range(60)]
    lines += ['{"external_id": "broken \\udc92", "visibility": 1}', "{not json"]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    plain = _ndr(var, database_url, "import", str(source), "--org", "tj", "--format", "jsonl",
                 "--suborgs")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout.splitlines()[-1])["rejected"] == 62
    assert sum(line.startswith("rejected #") for line in plain.stderr.splitlines()) == 62
    assert "more rejected" not in plain.stderr  # no cut at 50

    rejects = tmp_path / "rejects.jsonl"
    again = _ndr(var, database_url, "import", str(source), "--org", "tj", "--format", "jsonl",
                 "--suborgs", "--rejects", str(rejects))
    assert again.returncode == 0, again.stderr
    written = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert len(written) == 62
    assert {w["position"] for w in written} == set(range(4, 66))
    missing = next(w for w in written if w["external_id"] == "bad-0")
    assert missing["reasons"] == ["/metadata/description: is required"]
    assert missing["source"]["metadata"]["title"] == {"zh": "缺说明0"}  # fix and re-import
    broken = next(w for w in written if w["position"] == 64)
    assert "/visibility: must be 'public' or 'government'" in broken["reasons"]
    assert written[-1]["source"] == "{not json"
    assert "60  /metadata/description: is required" in again.stderr  # the tally, not the lines
    summary = json.loads(again.stdout.splitlines()[-1])
    assert summary["rejects_file"] == str(rejects) and summary["unchanged"] == 3


# ------------------------------------------------------------------ house rules


def _imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_importer_modules_have_no_import_cycle() -> None:
    """Every import, also those inside functions, between the importer modules: a DAG."""
    package = REPO / "registry" / "importers"
    modules = {f"registry.importers.{p.stem}": p for p in package.glob("*.py")
               if p.stem != "__init__"}
    graph = {name: {m for m in _imports_of(path) if m in modules and m != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: tuple[str, ...]) -> None:
        if state.get(node) == 2:
            return
        assert state.get(node) != 1, f"import cycle: {' -> '.join((*trail, node))}"
        state[node] = 1
        for nxt in graph[node]:
            visit(nxt, (*trail, node))
        state[node] = 2

    for module in graph:
        visit(module, ())
    assert "registry.importers.records" not in modules  # the old grab-bag is gone
    assert "registry.cli" not in {m for path in modules.values() for m in _imports_of(path)}


# ------------------------------------------------------------------ a killed reader


def test_a_killed_reader_fails_the_import_and_leaves_whole_batches(registry, tmp_path: Path  # type: ignore[no-untyped-def]
                                                                   ) -> None:
    import multiprocessing
    import signal
    import threading
    import time

    from sqlalchemy import func, select

    from registry.auth.principal import Principal
    from registry.datasets.models import Dataset
    from registry.importers.pipeline import ImportFailed, run_import
    from registry.organizations.models import Role

    registry.org("big", name_zh="大城市人民政府")
    source = _jsonl(tmp_path / "big.jsonl", [_entry(f"e{i}", title=f"公交线路{i}")
                                              for i in range(20_000)])
    operator = Principal(id="test:operator", organization_id=None, role=Role.OPERATOR)
    outcome: dict[str, BaseException | object] = {}

    def run() -> None:
        try:
            outcome["summary"] = run_import(registry.state, source, "big", "jsonl",
                                            principal=operator, batch_size=50)
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    reader = None
    while reader is None and time.monotonic() < deadline:
        reader = next((p for p in multiprocessing.active_children()
                       if p.name == "ndr-import-reader"), None)
        time.sleep(0.05)
    assert reader is not None and reader.pid is not None
    os.kill(reader.pid, signal.SIGKILL)
    worker.join(timeout=120)
    assert not worker.is_alive(), "the import waited forever for a dead reader"
    assert isinstance(outcome.get("error"), ImportFailed), outcome
    assert "stopped" in str(outcome["error"])
    with registry.state.db.read() as session:
        written = session.scalar(select(func.count()).select_from(Dataset))
    assert written < 20_000 and written % 50 == 0  # whole batches only
