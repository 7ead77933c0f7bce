from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "submissions"
    verbose_name = "Envios"

    def ready(self) -> None:
        from submissions.intake import checks  # noqa: F401  (registers the system check)
