"""``manage.py backup_db``: dump the database to storage (backups/), keeping the newest N."""

from __future__ import annotations

from kernel.commands import RaioxCommand
from raiox.backups import backup_create, backup_list


class Command(RaioxCommand):
    help = "Grava um backup do banco (pg_dump) em backups/ no armazenamento e apaga os mais antigos."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--keep", type=int, default=None, help="quantos manter (padrão: RAIOX_BACKUP_KEEP)")
        parser.add_argument("--list", action="store_true", help="só lista os backups guardados")

    def handle(self, *args: object, keep: int | None = None, list: bool = False, **options: object) -> None:
        if list:
            for name in backup_list():
                self.stdout.write(name)
            return
        self.stdout.write(backup_create(keep=keep))
