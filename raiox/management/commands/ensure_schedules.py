"""``manage.py ensure_schedules``: create or update the periodic tasks (idempotent, run on every deploy)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule

from kernel.commands import RaioxCommand

SCHEDULES = [
    # name, function, type, minutes (for MINUTES), first run (hour, minute) local time or None (now)
    ("raiox-backup-db", "raiox.backups.backup_task", Schedule.DAILY, None, (3, 0)),
    # LGPD retention after the backup (least traffic): RAIOX_RETENTION_DAYS.
    ("raiox-retention", "submissions.tasks.apply_retention", Schedule.DAILY, None, (3, 30)),
    # Submissions stuck in received/processing past RAIOX_STUCK_SUBMISSION_SECONDS are queued again.
    ("raiox-requeue-stuck", "submissions.tasks.requeue_stuck_submissions", Schedule.MINUTES, 5, None),
]

# The scheduled retraining (issue 21): only while RAIOX_AUTO_RETRAIN_MIN_NEW_CASES > 0 (off by
# default: then the schedule is removed). Daily, after the backup and the retention.
RETRAIN = ("raiox-auto-retrain", "matching.tasks.retrain_when_enough_cases", Schedule.DAILY, None, (4, 0))


class Command(RaioxCommand):
    help = (
        "Cria (ou atualiza) as tarefas periódicas: backup diário do banco, retenção (LGPD) e "
        "reenfileiramento de envios parados."
    )

    def handle(self, *args: object, **options: object) -> None:
        now = timezone.localtime()
        schedules = list(SCHEDULES)
        if settings.RAIOX_AUTO_RETRAIN_MIN_NEW_CASES > 0:
            schedules.append(RETRAIN)
        elif Schedule.objects.filter(name=RETRAIN[0]).delete()[0]:
            self.stdout.write(f"{RETRAIN[0]}: removed (RAIOX_AUTO_RETRAIN_MIN_NEW_CASES=0)")
        for name, func, schedule_type, minutes, at in schedules:
            defaults = {"func": func, "schedule_type": schedule_type, "repeats": -1}
            if minutes is not None:
                defaults["minutes"] = minutes
            if name == RETRAIN[0]:
                # Training outlasts the queue's task timeout: this task gets its own.
                timeout = settings.RAIOX_AUTO_RETRAIN_MAX_MINUTES * 60 + 900
                defaults["kwargs"] = f"q_options={{'timeout': {timeout}}}"
            schedule, created = Schedule.objects.update_or_create(name=name, defaults=defaults)
            if created:
                # Only on creation: re-running must not push the next run of an existing schedule.
                if at is not None:
                    day = now.date() + timedelta(days=1)
                    schedule.next_run = timezone.make_aware(datetime.combine(day, time(*at)))
                else:
                    schedule.next_run = timezone.now()
                schedule.save(update_fields=["next_run"])
            self.stdout.write(f"{name}: {func} {schedule_type} next {schedule.next_run:%Y-%m-%d %H:%M}")
