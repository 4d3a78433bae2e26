"""F4, F7, F13 and "Must have" 4: sign-in throttling and lockout, bounded password hashing,
server-side sessions that die on sign-out and on password change, secure cookies and HSTS."""

from __future__ import annotations

import re
import threading
import time
from http.cookies import SimpleCookie

import pytest

from registry.auth.users import MAX_CONCURRENT_HASHES, check_password, create_user, set_password
from registry.problems import Problem
from tests.conftest import RegistryHarness, build_registry

PASSWORD = "correct horse battery"
EMAIL = "officer@mot.example"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.fixture
def site(registry: RegistryHarness) -> RegistryHarness:
    registry.org("mot", name_zh="交通运输部")
    with registry.state.db.write() as session:
        create_user(session, email=EMAIL, display_name="张三", password=PASSWORD,
                    organization_id="mot")
    return registry


@pytest.fixture
def tight_site(database_url: str, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A registry whose per-client limit is 5 sign-ins a minute (hashing is slow here)."""
    monkeypatch.setenv("NDR_SIGNIN_RATE_PER_CLIENT", "5/minute")
    harness = build_registry(database_url, tmp_path / "tight")
    harness.org("mot")
    with harness.state.db.write() as session:
        create_user(session, email=EMAIL, display_name="张三", password=PASSWORD,
                    organization_id="mot")
    try:
        yield harness
    finally:
        harness.state.stop()
        harness.state.db.dispose()


def _signin(client, email: str, password: str, *, lang: str = "zh",  # type: ignore[no-untyped-def]
            **environ: str):
    page = client.get(f"/signin?lang={lang}", environ_base=environ).get_data(as_text=True)
    return client.post("/signin", data={"email": email, "password": password,
                                        "csrf_token": _csrf(page)}, environ_base=environ)


def _signed_in(client) -> bool:  # type: ignore[no-untyped-def]
    return client.get("/department/").status_code == 200


# ---------------------------------------------------------------- F4: guessing


def test_200_wrong_passwords_then_the_right_one_is_refused(site: RegistryHarness) -> None:
    client = site.app.test_client()
    statuses = [_signin(client, EMAIL, f"wrong guess {n}").status_code for n in range(200)]
    assert statuses[:9] == [401] * 9          # the first failures are ordinary
    assert set(statuses[10:]) == {429}        # then throttled or locked, never checked again
    right = _signin(client, EMAIL, PASSWORD)
    assert right.status_code == 429
    assert "锁定" in right.get_data(as_text=True)  # the lockout, said in Chinese
    assert int(right.headers["Retry-After"]) > 0
    assert not _signed_in(client)
    english = _signin(client, EMAIL, PASSWORD, lang="en")
    assert "locked" in english.get_data(as_text=True)


def test_the_lockout_holds_in_every_worker(site: RegistryHarness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Ten failures spread over clients, each from its own address (so per-client limits do
    not trigger), lock the account for a fresh app on the same database: another worker."""
    for n in range(10):
        client = site.app.test_client()
        response = _signin(client, EMAIL, f"wrong {n}", REMOTE_ADDR=f"10.0.0.{n + 1}")
        assert response.status_code in (401, 429)
    other = build_registry(site.state.settings.database_url, tmp_path / "other-var")
    try:
        response = _signin(other.app.test_client(), EMAIL, PASSWORD, REMOTE_ADDR="10.9.9.9")
        assert response.status_code == 429 and "锁定" in response.get_data(as_text=True)
    finally:
        other.state.stop()
        other.state.db.dispose()


def test_an_operator_can_unlock_and_success_resets_the_count(site: RegistryHarness) -> None:
    from registry.auth.lockout import unlock

    for n in range(10):
        _signin(site.app.test_client(), EMAIL, f"wrong {n}", REMOTE_ADDR=f"10.1.0.{n + 1}")
    with site.state.db.write() as session:
        unlock(session, EMAIL)
    client = site.app.test_client()
    assert _signin(client, EMAIL, PASSWORD, REMOTE_ADDR="10.1.1.1").status_code == 302
    assert _signed_in(client)


def test_one_client_spraying_many_accounts_is_throttled(tight_site: RegistryHarness) -> None:
    client = tight_site.app.test_client()
    statuses = [_signin(client, f"user{n}@mot.example", "wrong password").status_code
                for n in range(7)]
    assert statuses == [401] * 5 + [429, 429]
    throttled = _signin(client, EMAIL, PASSWORD)
    assert throttled.status_code == 429 and "频繁" in throttled.get_data(as_text=True)
    assert "Retry-After" in throttled.headers
    # another client is not punished for it
    assert _signin(tight_site.app.test_client(), EMAIL, PASSWORD,
                   REMOTE_ADDR="10.2.0.1").status_code == 302


def test_a_forged_forwarded_for_header_does_not_evade_the_limit(
        tight_site: RegistryHarness) -> None:
    """Without NDR_TRUSTED_PROXIES, X-Forwarded-For is the client's claim and is ignored."""
    client = tight_site.app.test_client()
    statuses = []
    for n in range(7):
        page = client.get("/signin").get_data(as_text=True)
        statuses.append(client.post("/signin", data={
            "email": f"spray{n}@mot.example", "password": "wrong", "csrf_token": _csrf(page)},
            headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code)
    assert statuses == [401] * 5 + [429, 429]


def test_password_hashing_is_bounded(site: RegistryHarness) -> None:
    """12 sign-ins at once: no more than MAX_CONCURRENT_HASHES argon2 hashes (64 MiB each)
    are in memory together. Measured as the process's peak resident memory."""
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.002)

    outcomes: list[str] = []

    def attempt() -> None:
        try:
            with site.state.db.read() as session:
                outcomes.append(repr(check_password(session, EMAIL, "wrong password")))
        except Problem as problem:  # waited too long for a hashing slot: a 503, by design
            outcomes.append(str(problem.status))

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=attempt) for _ in range(12)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done.set()
    sampler.join()
    assert len(outcomes) == 12 and set(outcomes) <= {"None", "503"}
    growth_mib = (peak - baseline) / 2**20
    assert growth_mib < (MAX_CONCURRENT_HASHES + 2) * 64, f"grew {growth_mib:.0f} MiB"


# ---------------------------------------------------------------- F7: sessions end


def _cookie(client) -> str:  # type: ignore[no-untyped-def]
    cookie = client.get_cookie("ndr_session")
    assert cookie is not None
    return cookie.value


def test_a_copied_cookie_stops_working_after_sign_out(site: RegistryHarness) -> None:
    officer = site.app.test_client()
    assert _signin(officer, EMAIL, PASSWORD).status_code == 302
    stolen = _cookie(officer)
    thief = site.app.test_client()
    thief.set_cookie("ndr_session", stolen)
    assert _signed_in(thief)  # the copy works while the officer is signed in
    page = officer.get("/department/").get_data(as_text=True)
    assert officer.post("/signout", data={"csrf_token": _csrf(page)}).status_code == 302
    replay = site.app.test_client()
    replay.set_cookie("ndr_session", stolen)
    response = replay.get("/department/")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]


def test_a_password_change_ends_every_session(site: RegistryHarness) -> None:
    from sqlalchemy import select

    from registry.organizations.models import User

    laptop, phone = site.app.test_client(), site.app.test_client()
    assert _signin(laptop, EMAIL, PASSWORD).status_code == 302
    assert _signin(phone, EMAIL, PASSWORD, REMOTE_ADDR="10.3.0.1").status_code == 302
    assert _signed_in(laptop) and _signed_in(phone)
    with site.state.db.write() as session:
        user = session.scalar(select(User).where(User.email == EMAIL))
        assert set_password(session, user, "a brand new passphrase") == 2
    assert not _signed_in(laptop) and not _signed_in(phone)
    assert _signin(laptop, EMAIL, PASSWORD).status_code == 401
    assert _signin(laptop, EMAIL, "a brand new passphrase").status_code == 302


def test_the_cookie_holds_no_user_id(site: RegistryHarness) -> None:
    """A signed cookie is readable (base64): it must carry only the random session id."""
    import base64
    import zlib

    client = site.app.test_client()
    _signin(client, EMAIL, PASSWORD)
    payload = _cookie(client).lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    text = (zlib.decompress(raw) if _cookie(client).startswith(".") else raw).decode()
    assert "user_id" not in text and '"sid"' in text


# ---------------------------------------------------------------- F13: https


def _set_cookie_of(response) -> SimpleCookie:  # type: ignore[no-untyped-def]
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        jar.load(header)
    return jar


def test_https_requests_get_hsts_and_secure_cookies(site: RegistryHarness) -> None:
    client = site.app.test_client()
    page = client.get("/signin", base_url="https://data.example.gov.cn")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    api = client.get("/api/v1/datasets", base_url="https://data.example.gov.cn")
    assert "Strict-Transport-Security" in api.headers
    response = client.post("/signin", base_url="https://data.example.gov.cn", data={
        "email": EMAIL, "password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    assert response.status_code == 302
    assert _set_cookie_of(response)["ndr_session"]["secure"]


def test_plain_http_gets_no_hsts(site: RegistryHarness) -> None:
    response = site.app.test_client().get("/signin")
    assert "Strict-Transport-Security" not in response.headers


def test_forwarded_proto_counts_only_behind_a_trusted_proxy(database_url: str, tmp_path,  # type: ignore[no-untyped-def]
                                                           monkeypatch) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    untrusted = build_registry(database_url, tmp_path / "a")
    try:
        assert "Strict-Transport-Security" not in untrusted.client.get(
            "/signin", headers=headers).headers
    finally:
        untrusted.state.stop()
        untrusted.state.db.dispose()
    monkeypatch.setenv("NDR_TRUSTED_PROXIES", "1")
    trusted = build_registry(database_url, tmp_path / "b")
    try:
        response = trusted.client.get("/signin", headers=headers)
        assert "Strict-Transport-Security" in response.headers
        assert _set_cookie_of(response)["ndr_session"]["secure"]
    finally:
        trusted.state.stop()
        trusted.state.db.dispose()
