from django.apps import AppConfig


class RaioxConfig(AppConfig):
    name = "raiox"
    verbose_name = "Raiox AI"

    def ready(self) -> None:
        from raiox import checks  # noqa: F401  (registers the system checks)
