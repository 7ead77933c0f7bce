"""The dentist's e-mail: one message in Portuguese with the link to the result page.

The subject never names the patient (subjects show up in notification previews and mail logs);
the body names the tooth and the date, not the patient either: the result page, behind its
unguessable link, is where the details are. Nothing the sender typed is in it (not even the
dentist's name in the greeting): anyone may send an X-ray with any address, and their words in our
e-mail would make the site a phishing relay.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from submissions.models import Status, Submission
from submissions.results.answer import headline
from submissions.results.links import result_url
from submissions.results.queries import no_fixture_found


def build_result_email(submission: Submission) -> EmailMessage:
    with override(settings.LANGUAGE_CODE):
        if submission.status == Status.FAILED:
            subject = _("Raiox AI: não foi possível analisar a sua radiografia")
        else:
            subject = _("Raiox AI: o resultado da sua radiografia está pronto")
        body = render_to_string(
            "submissions/email/result.txt",
            {
                "submission": submission,
                "failed": submission.status == Status.FAILED,
                # Never promise candidates where there are none: nothing found, or one answer
                # per implant found (each region's page).
                "nothing_found": no_fixture_found(submission),
                "regions": submission.crops.count() if submission.status == Status.DONE else 0,
                "link": result_url(submission),
                "received": timezone.localtime(submission.received_at),
                # The first candidate's calibrated probability (none while the model is uncalibrated).
                "headline": headline(submission),
            },
        )
    return EmailMessage(subject=subject, body=body, to=[submission.dentist_email])


def send_result_email(submission: Submission) -> None:
    """Send it now; raises when the mail server refuses, so the task is retried."""
    build_result_email(submission).send(fail_silently=False)


def build_review_email(review) -> EmailMessage:  # review: submissions.models.ReviewRequest
    """The specialist's answer: the implant (or "not identifiable" and the note), the link."""
    submission = review.submission
    with override(settings.LANGUAGE_CODE):
        subject = _("Raiox AI: um especialista revisou a sua radiografia")
        body = render_to_string(
            "submissions/email/review.txt",
            {
                "submission": submission,
                "review": review,
                "link": result_url(submission),
                "received": timezone.localtime(submission.received_at),
            },
        )
    return EmailMessage(subject=subject, body=body, to=[submission.dentist_email])


def send_review_email(review) -> None:
    """Send it now; raises when the mail server refuses, so the task is retried."""
    build_review_email(review).send(fail_silently=False)
