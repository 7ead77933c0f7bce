"""``manage.py restore_db <name>|--latest``: restore a backup from storage over the current database."""

from __future__ import annotations

from django.core.management.base import CommandError

from kernel.commands import RaioxCommand
from kernel.errors import ApplicationError
from raiox.backups import backup_restore


class Command(RaioxCommand):
    help = "Restaura um backup de backups/ sobre o banco atual (tudo ou nada, numa transação)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?", help="nome do backup (ex.: raiox-20250101T030000000000Z.dump)")
        parser.add_argument("--latest", action="store_true", help="restaura o mais recente")
        parser.add_argument("--yes", action="store_true", help="não pede confirmação")

    def handle(self, *args: object, name: str | None = None, latest: bool = False, yes: bool = False, **opts) -> None:
        if bool(name) == latest:
            raise CommandError("Informe um nome de backup ou --latest.")
        if not yes and opts.get("interactive", True):
            answer = input("Isto substitui TODOS os dados do banco atual. Digite 'sim' para continuar: ")
            if answer.strip().lower() != "sim":
                raise CommandError("Cancelado.")
        try:
            restored = backup_restore(name=None if latest else name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"restaurado: {restored}")
