from django.apps import AppConfig


class RaioxConfig(AppConfig):
    name = "raiox"
    verbose_name = "Raiox AI"
