"""kernel/downloads.py on its own: a remote URL is accepted only on an allow-listed host, and every
hop of a download (redirects included) is checked again, against a real HTTP server on loopback
(``upload_host``) — the intake routes' tests reach the same code only through HTTP."""

from __future__ import annotations

import pytest

from kernel.downloads import MAX_REDIRECTS, TransientDownloadError, check_remote_url, download
from kernel.errors import ApplicationError


def _get(host, path: str, *, max_bytes: int = 1000, hint: str = "") -> bytes:
    return download(
        host.url(path), allowed_hosts=[host.netloc], headers={}, timeout=5.0, max_bytes=max_bytes, forbidden_hint=hint
    )


def _code(call) -> str:
    with pytest.raises(ApplicationError) as caught:
        call()
    return caught.value.code


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        None,
        "https://files.example.com/a b.png",
        "https://files.example.com/a\x07.png",
        "https://user:secret@files.example.com/a.png",
        "https://files.example.com:99999/a.png",
        "https://files.example.com/" + "a" * 2000,
    ],
)
def test_a_malformed_url_is_invalid(settings, url):
    assert _code(lambda: check_remote_url(url, allowed_hosts=["files.example.com"])) == "invalid_url"


def test_only_an_allowed_host_over_https_is_accepted(settings):
    settings.RAIOX_ALLOW_HTTP_DOWNLOADS = False
    hosts = [" Files.Example.com ", "other.example.com:8443"]
    assert (
        check_remote_url(" https://FILES.example.com/a.png ", allowed_hosts=hosts) == "https://FILES.example.com/a.png"
    )
    assert check_remote_url("https://files.example.com:443/a.png", allowed_hosts=hosts)  # the default port
    assert check_remote_url("https://other.example.com:8443/a.png", allowed_hosts=hosts)
    for url in [
        "https://evil.example.com/a.png",
        "https://files.example.com.evil.example.com/a.png",
        "https://other.example.com/a.png",  # the allowed port only
        "https://127.0.0.1/a.png",
    ]:
        assert _code(lambda url=url: check_remote_url(url, allowed_hosts=hosts)) == "url_not_allowed", url
    assert _code(lambda: check_remote_url("http://files.example.com/a.png", allowed_hosts=hosts)) == "url_not_allowed"
    assert _code(lambda: check_remote_url("ftp://files.example.com/a.png", allowed_hosts=hosts)) == "url_not_allowed"


def test_the_body_of_an_allowed_host_is_returned_and_a_redirect_on_it_followed(upload_host):
    upload_host.serve("/x.png", b"pixels")
    upload_host.serve("/moved", b"", status=302, headers={"Location": "/x.png"})
    assert _get(upload_host, "/x.png") == b"pixels"
    assert _get(upload_host, "/moved") == b"pixels"
    assert [r["path"] for r in upload_host.requests] == ["/x.png", "/moved", "/x.png"]


def test_a_redirect_to_another_host_is_refused_before_any_request_goes_there(upload_host):
    upload_host.serve("/away", b"", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    assert _code(lambda: _get(upload_host, "/away")) == "url_not_allowed"
    assert [r["path"] for r in upload_host.requests] == ["/away"]


def test_a_redirect_loop_ends_after_the_limit(upload_host):
    upload_host.serve("/loop", b"", status=301, headers={"Location": "/loop"})
    assert _code(lambda: _get(upload_host, "/loop")) == "too_many_redirects"
    assert len(upload_host.requests) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_or_failing_host_is_transient(upload_host, status):
    upload_host.serve("/busy", b"later", status=status)
    with pytest.raises(TransientDownloadError):
        _get(upload_host, "/busy")


def test_refused_missing_and_too_big_are_permanent_with_a_reason(upload_host):
    upload_host.serve("/private", b"no", status=403)
    upload_host.serve("/big", b"x" * 1001)
    with pytest.raises(ApplicationError) as caught:
        _get(upload_host, "/private", hint=" (ajuste JOTFORM_API_KEY)")
    assert caught.value.code == "remote_forbidden" and "JOTFORM_API_KEY" in str(caught.value.message)
    assert _code(lambda: _get(upload_host, "/nowhere")) == "remote_missing"
    with pytest.raises(ApplicationError) as caught:
        _get(upload_host, "/big")
    assert caught.value.code == "file_too_large" and caught.value.status == 413
    assert _get(upload_host, "/big", max_bytes=1001) == b"x" * 1001  # the cap itself is allowed
