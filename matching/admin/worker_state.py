"""The workers' heartbeats (``WorkerState``), read-only: each worker writes its own row."""

from django.contrib import admin

from matching.models import WorkerState


@admin.register(WorkerState)
class WorkerStateAdmin(admin.ModelAdmin):
    list_display = ("hostname", "pid", "model_id", "untrained", "device", "build_seconds", "last_seen")
    readonly_fields = (*list_display, "started_at")

    def has_add_permission(self, request) -> bool:
        return False
