"""The shipped nginx site (deploy/nginx-ndr.conf) in front of the shipped gunicorn config, both
real: HSTS and a Secure session cookie under https (F13), `limit_req` on /signin (F4), and no
token from a URL in nginx's access log (F12). Skipped when nginx is not installed."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from tests.security.servers import REPO, Gunicorn, _env, _free_port, _ndr_init, _wait_for

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None or shutil.which("openssl") is None,
                                reason="nginx or openssl is not installed")


def _site(tmp: Path, upstream: int, https: int, http: int) -> str:
    """The shipped site with only addresses, paths and the certificate changed."""
    site = (REPO / "deploy" / "nginx-ndr.conf").read_text()
    site = re.sub(r"upstream ndr_web \{.*?\n\}", "upstream ndr_web {\n    server 127.0.0.1:"
                  f"{upstream};\n    keepalive 8;\n}}", site, flags=re.S)
    site = site.replace("/var/cache/nginx/ndr-tiles", str(tmp / "cache"))
    site = site.replace("/var/log/nginx/ndr-access.log", str(tmp / "access.log"))
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl;\n"
                        f"    ssl_certificate {tmp / 'cert.pem'};\n"
                        f"    ssl_certificate_key {tmp / 'key.pem'};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http};")
    assert "10.0.0.11" not in site and "listen 443" not in site
    return site


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    var = tmp_path / "var"
    _ndr_init(var)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
                    "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    upstream, https, http = _free_port(), _free_port(), _free_port()
    web = Gunicorn(["--config", str(REPO / "deploy" / "gunicorn.conf.py")],
                   _env(var, NDR_BIND=f"127.0.0.1:{upstream}", NDR_WORKERS="2",
                        NDR_TRUSTED_PROXIES="1", NDR_ACCESS_LOG=str(tmp_path / "gunicorn.log")),
                   tmp_path / "gunicorn-error.log")
    (tmp_path / "site.conf").write_text(_site(tmp_path, upstream, https, http))
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"{name}_temp_path {tmp_path / name};\n"
                   for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"{user}daemon off;\npid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n"
        f"events {{}}\nhttp {{\n{temp}include {tmp_path / 'site.conf'};\n}}\n")
    nginx = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    context.check_hostname = False

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{https}/healthz", timeout=2,
                                        context=context):
                return True
        except (OSError, urllib.error.HTTPError):
            return nginx.poll() is not None or web.process.poll() is not None
    try:
        _wait_for(up, 180, "nginx and gunicorn")
        assert nginx.poll() is None, (tmp_path / "error.log").read_text()
        assert web.process.poll() is None, web.text()
        yield {"base": f"https://127.0.0.1:{https}", "http": f"http://127.0.0.1:{http}",
               "context": context, "tmp": tmp_path}
    finally:
        nginx.terminate()
        nginx.wait(30)
        web.stop()


def _get(stack: dict, path: str, **headers: str):  # type: ignore[no-untyped-def,type-arg]
    request = urllib.request.Request(stack["base"] + path, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=30, context=stack["context"])
    except urllib.error.HTTPError as error:
        return error


def test_https_through_nginx_has_hsts_and_a_secure_cookie(stack: dict) -> None:  # type: ignore[type-arg]
    response = _get(stack, "/signin")
    assert response.status == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookie: SimpleCookie = SimpleCookie(response.headers["Set-Cookie"])
    assert cookie["ndr_session"]["secure"]  # the app believed nginx's X-Forwarded-Proto
    api = _get(stack, "/api/v1/datasets")
    assert "Strict-Transport-Security" in api.headers
    redirect = urllib.request.Request(stack["http"] + "/signin", method="GET")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None
    with pytest.raises(urllib.error.HTTPError) as moved:
        urllib.request.build_opener(NoRedirect).open(redirect, timeout=10)
    assert moved.value.code == 301 and moved.value.headers["Location"].startswith("https://")


def test_nginx_limits_signin_floods(stack: dict) -> None:  # type: ignore[type-arg]
    statuses = []
    for n in range(12):
        body = urllib.parse.urlencode({"email": f"x{n}@example.cn", "password": "wrong"}).encode()
        request = urllib.request.Request(stack["base"] + "/signin", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60, context=stack["context"]) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
    # burst 5 + 1: the rest are refused by nginx before a worker sees them
    assert statuses.count(429) >= 5, statuses
    assert statuses[0] != 429


def test_tokens_in_urls_are_not_in_nginx_or_gunicorn_logs(stack: dict) -> None:  # type: ignore[type-arg]
    secret = "ndr_" + "NginxLogSecret" * 3
    response = _get(stack, f"/api/v1/datasets?access_token={secret}")
    assert response.status == 400
    _wait_for(lambda: (stack["tmp"] / "access.log").exists()
              and "/api/v1/datasets" in (stack["tmp"] / "access.log").read_text(), 30, "log")
    _wait_for(lambda: "[redacted]" in (stack["tmp"] / "gunicorn.log").read_text(), 30, "log")
    for log in ("access.log", "gunicorn.log"):
        assert secret not in (stack["tmp"] / log).read_text(), log
