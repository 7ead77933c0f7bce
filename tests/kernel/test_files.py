"""The "no orphan file, no lost file" rule (``kernel.files``), on the storages the suite runs
against (a local folder, an S3 bucket on moto's server), with real commits and rollbacks."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction

from kernel.files import delete_files_on_commit, stored_file
from tests.builders.storage import storage_keys


class Boom(Exception):
    pass


@pytest.fixture(params=["local", "s3"])
def storage(request):
    """The default storage, once as a local folder (every test's own) and once as a bucket."""
    if request.param == "s3":
        request.getfixturevalue("s3_storage")
    return storages["default"]


pytestmark = pytest.mark.django_db(transaction=True)


def test_a_file_whose_own_transaction_commits_is_kept(storage):
    with stored_file("a.png", b"a") as name:
        pass
    assert storage_keys() == [name]


def test_a_file_whose_block_raises_is_deleted(storage):
    with pytest.raises(Boom), stored_file("a.png", b"a"):
        raise Boom
    assert storage_keys() == []


def test_an_outer_transaction_that_rolls_back_takes_the_file_with_it(storage):
    """The block itself succeeded (a savepoint released); the outer transaction then failed."""
    with pytest.raises(Boom), transaction.atomic():
        with stored_file("a.png", b"a") as name:
            pass
        assert storage_keys() == [name]  # still there while the outer transaction may commit
        raise Boom
    assert storage_keys() == []


def test_an_outer_transaction_that_commits_keeps_the_file(storage):
    with transaction.atomic(), transaction.atomic():
        with stored_file("a.png", b"a") as name:
            pass
    assert storage_keys() == [name]


def test_a_rolled_back_savepoint_takes_only_its_own_file(storage):
    with transaction.atomic():
        with stored_file("kept.png", b"k") as kept:
            pass
        try:
            with transaction.atomic():
                with stored_file("gone.png", b"g"):
                    pass
                raise Boom
        except Boom:
            pass
    assert storage_keys() == [kept]


def test_a_callback_failing_after_the_commit_keeps_the_committed_file(storage):
    def fails() -> None:
        raise Boom

    with pytest.raises(Boom), stored_file("a.png", b"a") as name:
        transaction.on_commit(fails)
    assert storage_keys() == [name]


def test_a_replaced_or_deleted_file_goes_only_when_the_change_commits(storage):
    old = storage.save("old.png", ContentFile(b"o"))
    with pytest.raises(Boom), transaction.atomic():
        delete_files_on_commit([old])
        raise Boom
    assert storage_keys() == [old]  # rolled back: the row still points at it

    with transaction.atomic():
        with transaction.atomic():
            delete_files_on_commit([old, ""])
        assert storage_keys() == [old]  # not before the outer COMMIT
    assert storage_keys() == []


def test_a_file_that_cannot_be_deleted_is_logged_not_raised(storage, monkeypatch, caplog):
    old = storage.save("old.png", ContentFile(b"o"))

    def unreachable(name: str) -> None:
        raise ConnectionError("bucket unreachable")

    monkeypatch.setattr(storage, "delete", unreachable)
    with transaction.atomic():
        delete_files_on_commit([old])
    assert "could not delete a file (ConnectionError)" in caplog.text
