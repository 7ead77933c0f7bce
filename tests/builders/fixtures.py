"""Fixtures more than one test folder uses, registered for the whole suite by ``tests/conftest.py``
(``pytest_plugins``), so that no test imports another folder's conftest: a stand-in for Jotform's
upload host, the seed catalogue embedded by the real model, and the staff roles and people."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from implants.models import ReferenceImage
from tests.builders.worker import embed_catalog

EDITORS = "Editores de catálogo"
REVIEWERS = "Revisores de casos"


@dataclass
class UploadHost:
    """A local stand-in for Jotform's upload host: path -> (status, body, headers)."""

    port: int
    routes: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.netloc}{path}"

    def serve(self, path: str, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> str:
        self.routes[path] = (status, body, headers or {"Content-Type": "image/png"})
        return self.url(path)


@pytest.fixture
def upload_host(settings) -> Iterator[UploadHost]:
    """A ThreadingHTTPServer on 127.0.0.1, allowed as Jotform's (and the webhook's) file host."""
    host = UploadHost(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.requests.append({"path": self.path, "headers": dict(self.headers)})
            status, body, headers = host.routes.get(self.path, (404, b"not found", {}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.JOTFORM_FILE_HOSTS = [host.netloc]
    settings.RAIOX_WEBHOOK_FILE_HOSTS = [host.netloc]
    settings.RAIOX_ALLOW_HTTP_DOWNLOADS = True
    yield host
    server.shutdown()
    server.server_close()


@pytest.fixture
def embedded_catalog(catalog) -> None:
    embed_catalog()
    assert not ReferenceImage.objects.filter(embedding__isnull=True).exists()


@dataclass
class Client:
    user: User | None
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Token {self.token}"} if self.token else {}


@pytest.fixture
def roles(db) -> None:
    call_command("create_roles", stdout=io.StringIO())


def _user(username: str, *, staff: bool, groups: list[str] = (), perms: list[str] = ()) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", "x-pass-123", is_staff=staff)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    for label in perms:
        from django.contrib.auth.models import Permission

        app_label, codename = label.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)  # fresh: no cached permissions


@pytest.fixture
def people(roles) -> dict[str, Client]:
    made = {
        "plain": _user("cliente", staff=False),
        "editor": _user("editora", staff=True, groups=[EDITORS]),
        "reviewer": _user("revisor", staff=True, groups=[REVIEWERS]),
        # Staff who may read submissions but not the patient's name.
        "viewer": _user("leitor", staff=True, perms=["submissions.view_submission"]),
        "admin": User.objects.create_superuser("chefe", "chefe@example.com", "x-pass-123"),
    }
    clients = {name: Client(user, Token.objects.create(user=user).key) for name, user in made.items()}
    clients["anonymous"] = Client(None, None)
    return clients
