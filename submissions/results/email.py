"""The dentist's e-mails, their text: the result (``build_result_email``) and the specialist's
answer (``build_review_email``), each one message in Portuguese with the link to the result page.
They are sent once by ``submissions/services/email.py``; the tasks hand it the text (a rendering of
the result, like the page: so the services never import the read model).

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
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import override

from submissions.models import ReviewRequest, Status, Submission
from submissions.results.answer import headline
from submissions.results.links import result_url
from submissions.results.queries import no_fixture_found


def build_result_email(submission: Submission) -> EmailMessage:
    failed = submission.status == Status.FAILED
    return _message(
        submission,
        subject=(
            _("Raiox AI: não foi possível analisar a sua radiografia")
            if failed
            else _("Raiox AI: o resultado da sua radiografia está pronto")
        ),
        template="submissions/email/result.txt",
        failed=failed,
        # Never promise candidates where there are none: nothing found, or one answer per implant
        # found (each region's page).
        nothing_found=no_fixture_found(submission),
        regions=submission.crops.count() if submission.status == Status.DONE else 0,
        # The first candidate's calibrated probability (none while the model is uncalibrated).
        headline=headline(submission),
    )


def build_review_email(review: ReviewRequest) -> EmailMessage:
    """The specialist's answer: the implant (or "not identifiable" and the note), the link."""
    return _message(
        review.submission,
        subject=_("Raiox AI: um especialista revisou a sua radiografia"),
        template="submissions/email/review.txt",
        review=review,
    )


def _message(submission: Submission, *, subject: Promise, template: str, **context: object) -> EmailMessage:
    """Both e-mails: in the site's language, to the submission's address, with its link and date."""
    with override(settings.LANGUAGE_CODE):
        body = render_to_string(
            template,
            {
                "submission": submission,
                "link": result_url(submission),
                "received": timezone.localtime(submission.received_at),
                **context,
            },
        )
        translated = str(subject)  # lazy until here: said in the site's language
    return EmailMessage(subject=translated, body=body, to=[submission.dentist_email])
