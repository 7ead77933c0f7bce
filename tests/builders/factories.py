"""factory_boy factories for the main models: rows as the services would have left them, for tests
that need a state and not the path to it (the paths have their own tests, through the services).

``SubmissionFactory(finished=True, matches=[implant, ...])`` is a submission the worker finished,
with one ``Match`` per implant in rank order (similarity 0.9, 0.89, ...).
"""

from __future__ import annotations

import datetime as dt

import factory
from django.core.files.base import ContentFile
from django.utils import timezone
from django.utils.text import slugify
from factory.django import DjangoModelFactory

from implants.models import BodyShape, Connection, Implant, Manufacturer, ReferenceImage, ThreadShape
from submissions.models import Match, ReviewRequest, Source, Status, Submission
from testkit.images import xray_png


class ManufacturerFactory(DjangoModelFactory):
    class Meta:
        model = Manufacturer
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Fabricante {n}")
    slug = factory.LazyAttribute(lambda o: slugify(o.name))


class ImplantFactory(DjangoModelFactory):
    class Meta:
        model = Implant

    manufacturer = factory.SubFactory(ManufacturerFactory)
    name = factory.Sequence(lambda n: f"Implante {n}")
    connection = Connection.INTERNAL_HEX
    body_shape = BodyShape.TAPERED
    thread_shape = ThreadShape.V


class ReferenceImageFactory(DjangoModelFactory):
    """A stored reference picture (the tests' X-ray for its seed), not embedded yet."""

    class Meta:
        model = ReferenceImage

    class Params:
        seed = factory.Sequence(lambda n: n)

    implant = factory.SubFactory(ImplantFactory)
    image = factory.LazyAttribute(lambda o: ContentFile(xray_png(o.seed), name=f"reference-{o.seed}.png"))


class SubmissionFactory(DjangoModelFactory):
    """A submission row; ``finished=True``: the worker took it when it arrived and finished it
    ``seconds`` later. ``matches``: the implants it answered, best first."""

    class Meta:
        model = Submission
        skip_postgeneration_save = True  # the matches are rows of their own: nothing to save again

    class Params:
        seconds = 2.0
        finished = factory.Trait(
            status=Status.DONE,
            started_at=factory.SelfAttribute("received_at"),
            finished_at=factory.LazyAttribute(lambda o: o.received_at + dt.timedelta(seconds=o.seconds)),
        )

    source = Source.UPLOAD
    dentist_name = "Dra. Ana"
    dentist_email = "ana@example.com"
    patient = "Maria Paciente"
    tooth = "36"
    status = Status.RECEIVED
    received_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))
    confirmed_implant = None
    confirmed_at = factory.LazyAttribute(lambda o: timezone.now() if o.confirmed_implant else None)

    @factory.post_generation
    def matches(submission, create, implants, **kwargs):
        if create and implants:
            Match.objects.bulk_create(
                [
                    Match(submission=submission, implant=implant, rank=rank, similarity=0.9 - rank / 100)
                    for rank, implant in enumerate(implants, start=1)
                ]
            )


class MatchFactory(DjangoModelFactory):
    class Meta:
        model = Match

    submission = factory.SubFactory(SubmissionFactory, finished=True)
    implant = factory.SubFactory(ImplantFactory)
    rank = factory.Sequence(lambda n: n + 1)
    similarity = 0.9


class ReviewRequestFactory(DjangoModelFactory):
    """The dentist asked a specialist about a finished submission; not answered yet."""

    class Meta:
        model = ReviewRequest

    submission = factory.SubFactory(SubmissionFactory, finished=True)
    note = ""
