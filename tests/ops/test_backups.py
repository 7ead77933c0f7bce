"""Backups: a real pg_dump of the test database to storage, a real pg_restore back."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django_q.models import Schedule

from implants.models import Implant, ReferenceImage
from implants.services import reference_image_set_embedding
from raiox.backups import backup_create, backup_list
from tests.builders.storage import storage_keys


def _vector(seed: int) -> list[float]:
    return [((i * 7 + seed) % 13) / 13.0 for i in range(512)]


@pytest.mark.django_db(transaction=True)  # pg_dump sees committed rows only
def test_backup_then_restore_brings_back_rows_and_embeddings(catalog):
    references = list(ReferenceImage.objects.order_by("pk")[:3])
    for n, reference in enumerate(references):
        reference_image_set_embedding(reference_id=reference.pk, embedding=_vector(n), model_id="ViT-B-32/test")
    implants_before = Implant.objects.count()
    references_before = ReferenceImage.objects.count()

    call_command("backup_db", verbosity=0)
    (name,) = backup_list()
    assert name.startswith("backups/raiox-") and name.endswith(".dump")
    assert name in storage_keys()

    # Damage: delete rows, change an embedding.
    ReferenceImage.objects.filter(pk=references[1].pk).delete()
    reference_image_set_embedding(reference_id=references[0].pk, embedding=_vector(99), model_id="other/model")
    assert ReferenceImage.objects.count() == references_before - 1

    call_command("restore_db", "--latest", "--yes", verbosity=0)

    assert connection.settings_dict["NAME"].startswith("test_")
    assert Implant.objects.count() == implants_before
    assert ReferenceImage.objects.count() == references_before
    for n, reference in enumerate(references):
        restored = ReferenceImage.objects.get(pk=reference.pk)
        assert restored.embedding_model == "ViT-B-32/test"
        assert [round(x, 5) for x in restored.embedding] == [round(x, 5) for x in _vector(n)]
    # pgvector still works on the restored table (extension, column type and index are back).
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [ReferenceImage._meta.db_table])
        assert any("hnsw" in row[0] for row in cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_backup_keeps_only_the_newest(settings):
    names = [backup_create(keep=2) for _ in range(3)]
    assert backup_list() == names[1:]


def test_restore_by_unknown_name_is_refused(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="não encontrado"):
        call_command("restore_db", "raiox-19990101T000000000000Z.dump", "--yes")


def test_daily_backup_schedule_is_created_once(db):
    call_command("ensure_schedules", verbosity=0)
    first = Schedule.objects.get(name="raiox-backup-db")
    call_command("ensure_schedules", verbosity=0)
    again = Schedule.objects.get(name="raiox-backup-db")
    assert Schedule.objects.filter(name="raiox-backup-db").count() == 1
    assert again.func == "raiox.backups.backup_task"
    assert again.schedule_type == Schedule.DAILY
    assert again.next_run == first.next_run
