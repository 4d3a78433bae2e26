"""Small things that bit a new user: the public URL follows `make run PORT=…`, the demo says
where its passwords are and never silently links to another host, `ndr --help` lists the
auditor's commands, and the footer never claims a chain that is not configured."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from registry.cli import cli
from registry.demo import load_demo_catalogue
from tests.conftest import RegistryHarness

ROOT = Path(__file__).resolve().parents[2]


def _fake_bin(tmp_path: Path) -> Path:
    """`ndr` and `gunicorn` stand-ins that print the public URL they were started with."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("ndr", "gunicorn"):
        script = bin_dir / name
        script.write_text('#!/bin/sh\necho "$(basename "$0") url=$NDR_PUBLIC_URL"\n')
        script.chmod(0o755)
    return bin_dir


def _make_run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    environment = {k: v for k, v in os.environ.items() if k != "NDR_PUBLIC_URL"}
    environment.update(env or {})
    done = subprocess.run(
        ["make", "--no-print-directory", "-o", "install", "run", f"BIN={_fake_bin(tmp_path)}",
         *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
        check=True)
    return done.stdout


def test_make_run_port_sets_the_public_url(tmp_path: Path) -> None:
    out = _make_run(tmp_path, "PORT=9123")
    assert "ndr url=http://127.0.0.1:9123" in out            # the demo is made for it
    assert "gunicorn url=http://127.0.0.1:9123" in out       # and the server uses it
    assert "var/demo-credentials.txt" in out                  # where the passwords are


def test_make_run_on_a_wildcard_host_uses_a_browsable_address(tmp_path: Path) -> None:
    out = _make_run(tmp_path, "PORT=9124", "HOST=0.0.0.0")
    assert "gunicorn url=http://127.0.0.1:9124" in out and "0.0.0.0:9124" not in out.split(
        "gunicorn url=")[1]


def test_a_configured_public_url_wins(tmp_path: Path) -> None:
    out = _make_run(tmp_path, "PORT=9125", env={"NDR_PUBLIC_URL": "https://data.example.cn"})
    assert "gunicorn url=https://data.example.cn" in out


def test_the_demo_links_to_this_server_and_says_where_passwords_are(registry: RegistryHarness,
                                                                    capsys) -> None:  # type: ignore[no-untyped-def]
    registry.state.settings.public_url = "http://127.0.0.1:9126"
    summary = load_demo_catalogue(registry.state)
    credentials = Path(registry.state.settings.var_dir) / "demo-credentials.txt"
    assert str(credentials) in summary
    body = registry.client.get("/api/v1/datasets?q=公共自行车").get_json()
    dataset = registry.client.get(f"/api/v1/datasets/{body['items'][0]['id']}").get_json()
    urls = [d["download_url"] for d in dataset["metadata"]["distributions"]]
    assert urls and all(u.startswith("http://127.0.0.1:9126/demo-files/") for u in urls)
    registry.state.settings.public_url = "http://127.0.0.1:9126/"
    assert "WARNING" not in load_demo_catalogue(registry.state)   # same address: no warning
    registry.state.settings.public_url = "http://127.0.0.1:8000"  # started on another port
    again = load_demo_catalogue(registry.state)
    assert again.startswith("skipped") and str(credentials) in again
    assert "WARNING" in again and "http://127.0.0.1:9126" in again


def test_ndr_help_lists_verify_and_monitor(capsys) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    listing = CliRunner().invoke(cli, ["--help"]).output
    commands = listing[listing.index("Commands:"):]
    assert "verify" in commands and "monitor" in commands
    monitor = CliRunner().invoke(cli, ["monitor", "--help"])
    assert monitor.exit_code == 0 and "--state" in monitor.output  # the auditor's own help


def test_footer_names_the_local_journal_when_no_chain_is_configured(registry: RegistryHarness,
                                                                    ) -> None:
    registry.state.settings.anchor_backend = "local"
    zh = registry.app.test_client().get("/").get_data(as_text=True)
    footer = zh[zh.index('<footer'):]
    assert "本地签名日志" in footer and "未配置区块链" in footer and "联盟链" not in footer
    en = registry.app.test_client().get("/?lang=en").get_data(as_text=True)
    footer = en[en.index('<footer'):]
    assert "local signed journal" in footer and "consortium" not in footer
    registry.state.settings.anchor_backend = "chainmaker"
    footer = registry.app.test_client().get("/").get_data(as_text=True).split("<footer")[1]
    assert "长安链" in footer and "本地签名日志" not in footer


def test_anchor_status_and_backend_are_words_in_chinese(demo: RegistryHarness) -> None:
    """The audit page and the history name an anchor's backend and status in words
    (本地签名日志, 已确认), not as the codes `local-journal` and `final`."""
    from registry.bootstrap import build_anchor_worker

    with demo.state.db.write() as session:
        demo.state.log.sign_checkpoint_if_grown(session)
    worker = build_anchor_worker(demo.state)
    worker.epoch_seconds = 0
    report = worker.run_once()
    assert report.chain_error is None
    html = demo.client.get("/audit").get_data(as_text=True)
    table = html[html.index('id="anchors-title"'):]
    table = table[:table.index("</table>")]
    visible = table.split("<details>")[0] + "".join(
        part.split("</details>")[1] for part in table.split("<details>")[1:])
    assert "本地签名日志" in visible and "已确认" in visible
    assert "local-journal" not in visible and ">final<" not in visible
