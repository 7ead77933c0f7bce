"""Fixtures of the back-office tests: staff roles (created by `create_roles`), API tokens, and
submissions built with known timestamps and matches."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token

from implants.models import Implant
from submissions.models import Match, Status, Submission
from testkit.xrays import xray_png

EDITORS = "Editores de catálogo"
REVIEWERS = "Revisores de casos"


def png_bytes(seed: int = 0, size: tuple[int, int] | None = None, brightness: int = 0) -> bytes:
    """A greyscale PNG X-ray with one implant (``testkit.xrays``); ``brightness`` shifts every pixel,
    for a near-duplicate of the same picture."""
    return xray_png(seed, size, brightness)


@dataclass
class Client:
    user: User | None
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Token {self.token}"} if self.token else {}


@pytest.fixture
def openapi(client) -> dict:
    """/api/schema/ as served (what /docs shows)."""
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


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


def make_submission(
    *,
    received_at: dt.datetime | None = None,
    seconds: float | None = 2.0,
    status: str = Status.DONE,
    source: str = "upload",
    matches: list[Implant] = (),
    confirmed: Implant | None = None,
    patient: str = "Maria Paciente",
    failure_reason: str = "",
    dentist: str = "Dra. Ana",
    model_id: str = "",
) -> Submission:
    """A submission row as the worker would leave it (fixtures only; the app writes via services)."""
    received_at = received_at or timezone.now() - dt.timedelta(hours=1)
    finished = received_at + dt.timedelta(seconds=seconds) if seconds is not None else None
    submission = Submission.objects.create(
        source=source,
        dentist_name=dentist,
        dentist_email="ana@example.com",
        patient=patient,
        tooth="36",
        status=status,
        failure_reason=failure_reason,
        received_at=received_at,
        started_at=received_at if finished else None,
        finished_at=finished,
        confirmed_implant=confirmed,
        confirmed_at=timezone.now() if confirmed else None,
        embedding_model=model_id,
    )
    Match.objects.bulk_create(
        [
            Match(submission=submission, implant=implant, rank=rank, similarity=0.9 - rank / 100)
            for rank, implant in enumerate(matches, start=1)
        ]
    )
    return submission
