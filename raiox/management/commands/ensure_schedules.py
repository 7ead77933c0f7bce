"""``manage.py ensure_schedules``: create or update the periodic tasks (idempotent, run on every deploy)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone
from django_q.models import Schedule

SCHEDULES = [
    # name, function, type; first run at 03:00 local time (least traffic)
    ("raiox-backup-db", "raiox.backups.backup_task", Schedule.DAILY),
]


class Command(BaseCommand):
    help = "Cria (ou atualiza) as tarefas periódicas: backup diário do banco."

    def handle(self, *args: object, **options: object) -> None:
        now = timezone.localtime()
        first_run = timezone.make_aware(datetime.combine(now.date() + timedelta(days=1), time(3, 0)))
        for name, func, schedule_type in SCHEDULES:
            schedule, created = Schedule.objects.update_or_create(
                name=name, defaults={"func": func, "schedule_type": schedule_type, "repeats": -1}
            )
            if created:
                # Only on creation: re-running must not push the next run of an existing schedule.
                schedule.next_run = first_run
                schedule.save(update_fields=["next_run"])
            self.stdout.write(f"{name}: {func} {schedule_type} next {schedule.next_run:%Y-%m-%d %H:%M}")
