"""Create a development admin user (and print its credentials) unless one exists."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from kernel.commands import RaioxCommand

DEV_USERNAME = "admin"
DEV_PASSWORD = "raiox-admin"  # noqa: S105 - development only, refused in production below


class Command(RaioxCommand):
    help = "Cria um usuário administrador de desenvolvimento (admin / raiox-admin), se não houver um."

    def handle(self, *args: object, **options: object) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError("Em produção, use `manage.py createsuperuser`.")
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists():
            self.stdout.write("Já existe um administrador; nada a fazer.")
            return
        users.create_superuser(DEV_USERNAME, "admin@localhost", DEV_PASSWORD)
        self.stdout.write(
            self.style.SUCCESS(
                f"Administrador de desenvolvimento criado: usuário '{DEV_USERNAME}', senha '{DEV_PASSWORD}'"
                " — http://127.0.0.1:8000/admin/"
            )
        )
