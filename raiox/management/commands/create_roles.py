"""Create (or bring up to date) the staff groups and their permissions. Idempotent: run it on
every deploy; permissions added by hand to these groups beyond the list are removed."""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from kernel.commands import RaioxCommand

CATALOGUE_EDITORS = "Editores de catálogo"
CASE_REVIEWERS = "Revisores de casos"

ROLES: dict[str, list[str]] = {
    CATALOGUE_EDITORS: [
        "implants.view_manufacturer",
        "implants.add_manufacturer",
        "implants.change_manufacturer",
        "implants.view_implant",
        "implants.add_implant",
        "implants.change_implant",
        "implants.view_referenceimage",
        "implants.add_referenceimage",
        "implants.change_referenceimage",
        "implants.delete_referenceimage",
        # Both roles read the latest accuracy report (evaluate_matching) before trusting a change,
        # and the calibrations fitted with it; activating one (what every dentist then reads) is
        # left to superusers or a holder of matching.change_calibration given by hand.
        "matching.view_evaluationreport",
        "matching.view_calibration",
        "matching.view_calibrationactivation",
        "implants.view_lookalikegroup",
        "implants.add_lookalikegroup",
        "implants.change_lookalikegroup",
        "implants.delete_lookalikegroup",
    ],
    CASE_REVIEWERS: [
        "submissions.view_submission",
        "submissions.change_submission",  # actions: re-process, confirm, un-confirm
        "submissions.view_patient_data",
        "submissions.view_match",
        "submissions.view_dentistfeedback",
        "submissions.view_reviewrequest",  # the specialist-review queue (answered as confirming)
        "implants.view_manufacturer",
        "implants.view_implant",
        "implants.view_referenceimage",
        "matching.view_evaluationreport",
        "matching.view_calibration",
        "matching.view_calibrationactivation",
    ],
}


def _permission(label: str) -> Permission:
    app_label, codename = label.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


class Command(RaioxCommand):
    help = "Cria os grupos da equipe (editores de catálogo, revisores de casos) com suas permissões."

    def handle(self, *args, **options) -> None:
        # Permissions are normally created after migrate; make sure they exist on a fresh database.
        for config in apps.get_app_configs():
            create_permissions(config, verbosity=0)
        with transaction.atomic():
            for name, labels in ROLES.items():
                group, created = Group.objects.get_or_create(name=name)
                group.permissions.set([_permission(label) for label in labels])
                verb = "criado" if created else "atualizado"
                self.stdout.write(f"Grupo {name!r} {verb}: {len(labels)} permissões.")
