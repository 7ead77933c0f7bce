"""The matching work, run by the workers: embed an X-ray or a catalogue image, search, record.

Typed keyword-only functions called by ``matching.tasks`` (which only take ids). Writes go through
the owning app's services (``submissions.services``, ``implants.services``); this module adds the
workers' own state (``WorkerState``).

Both jobs are idempotent: a re-delivered task (worker killed, retry) leaves one result. Transient
failures (storage or database unreachable) raise, so django-q retries the task (Q_CLUSTER retry /
max_attempts); an image that cannot be decoded fails its own submission with a reason and returns
normally, so it is not retried and never blocks the queue. Logs carry ids only, never patient data.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Func, IntegerField
from django.utils import timezone

from implants.models import REFINE_FIELDS, ReferenceImage
from implants.services import reference_image_set_embedding
from kernel.errors import ApplicationError
from kernel.imaging import InvalidImage, ValidatedImage
from kernel.queue import notifications
from matching import canonical
from matching import fixtures as fixture_finder
from matching.calibration import active_calibration, calibrated
from matching.embedder import Embedder, get_embedder
from matching.models import Calibration, TrainingRun, TrainingStatus, WorkerState
from matching.search import nearest_implants
from submissions import services as submission_services
from submissions.messages import MISSING_IMAGE
from submissions.models import DentistFeedback, Status, Submission, Verdict

logger = logging.getLogger(__name__)

# --- the workers' state (read by web processes through matching.state) -------------------------


@transaction.atomic
def worker_state_record(*, model_id: str, untrained: bool, device: str, build_seconds: float = 0.0) -> WorkerState:
    """Called by a worker when it has built its model (and to say it is still alive)."""
    now = timezone.now()
    state, _ = WorkerState.objects.update_or_create(
        hostname=socket.gethostname()[:255],
        pid=os.getpid(),
        defaults={
            "model_id": model_id,
            "untrained": untrained,
            "device": device,
            "build_seconds": build_seconds,
            "last_seen": now,
        },
        create_defaults={
            "model_id": model_id,
            "untrained": untrained,
            "device": device,
            "build_seconds": build_seconds,
            "started_at": now,
            "last_seen": now,
        },
    )
    return state


def worker_state_touch() -> bool:
    """A cheap heartbeat: the dashboard tells live workers from dead ones by last_seen. False when
    this process has no row (then the caller records it again)."""
    return bool(
        WorkerState.objects.filter(hostname=socket.gethostname()[:255], pid=os.getpid()).update(
            last_seen=timezone.now()
        )
    )


# --- the jobs ----------------------------------------------------------------------------------

HEARTBEAT_SECONDS = 60.0

UNREADABLE_IMAGE = "Não foi possível ler a imagem enviada. Envie o arquivo original da radiografia."
REMOTE_UNREACHABLE = "Não foi possível baixar a imagem do servidor de origem. Envie-a novamente."
STORAGE_UNREACHABLE = (
    "Não conseguimos ler a radiografia no armazenamento por um problema temporário nosso. Envie-a novamente."
)
NO_IMAGE = "Nenhuma imagem foi recebida com este envio. Envie a radiografia novamente."

_state_recorded_at: float | None = None
_state_model_id: str | None = None  # the model id last recorded (a switch records the new one)


class PoisonImage(Exception):
    """The stored image cannot be decoded: retrying will not help."""


def worker_embedder() -> Embedder:
    """The process's model, recorded in the database (once, then as a heartbeat) so that web
    processes, which never load torch, can tell which model answers and whether it is untrained."""
    global _state_recorded_at, _state_model_id
    embedder = get_embedder()
    now = time.monotonic()
    # The heartbeat re-creates the row if it was removed (e.g. the table was cleared by staff).
    if (
        _state_recorded_at is None
        or _state_model_id != embedder.model_id
        or (now - _state_recorded_at > HEARTBEAT_SECONDS and not worker_state_touch())
    ):
        worker_state_record(
            model_id=embedder.model_id,
            untrained=embedder.untrained,
            device=embedder.device,
            build_seconds=embedder.build_seconds,
        )
        _state_recorded_at, _state_model_id = now, embedder.model_id
    elif now - _state_recorded_at > HEARTBEAT_SECONDS:
        _state_recorded_at = now
    return embedder


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def reusable_embedding(
    content_hash: str,
    model_id: str,
    *,
    exclude_submission: int | None = None,
    exclude_reference: int | None = None,
) -> list[float] | None:
    """An embedding already computed by ``model_id`` for identical content, if any: the same
    image is never run through the model twice."""
    if not content_hash:
        return None
    refs = ReferenceImage.objects.filter(content_hash=content_hash, embedding_model=model_id, embedding__isnull=False)
    if exclude_reference is not None:
        refs = refs.exclude(pk=exclude_reference)
    found = refs.values_list("embedding", flat=True).first()
    if found is None:
        subs = Submission.objects.filter(content_hash=content_hash, embedding_model=model_id, embedding__isnull=False)
        if exclude_submission is not None:
            subs = subs.exclude(pk=exclude_submission)
        found = subs.values_list("embedding", flat=True).first()
    # Test against None: a pgvector value is a numpy array, ambiguous in a boolean context.
    return None if found is None else [float(x) for x in found]


def _embed_stored(embedder: Embedder, name: str) -> list[float]:
    try:
        data = _read(name)
    except FileNotFoundError as exc:  # gone for good: a retry cannot bring it back
        raise PoisonImage(MISSING_IMAGE) from exc
    try:
        image = embedder.load_image(data)
    except Exception as exc:  # any decoder error: this file will never decode
        raise PoisonImage(UNREADABLE_IMAGE) from exc
    return embedder.embed_images([image])[0]


def reference_image_embed(*, reference_id: int) -> str | None:
    """Embed one catalogue image with the workers' model (or reuse an identical image's
    embedding); returns the model id, or None when there is nothing to embed."""
    reference = ReferenceImage.objects.filter(pk=reference_id).first()
    if reference is None:
        return None  # deleted before the worker got to it
    embedder = worker_embedder()
    if reference.embedding is not None and reference.embedding_model == embedder.model_id:
        return embedder.model_id
    vector = reusable_embedding(reference.content_hash, embedder.model_id, exclude_reference=reference.pk)
    if vector is None:
        try:
            vector = _embed_stored(embedder, reference.image.name)
        except PoisonImage:
            # A catalogue image that cannot be decoded stays unembedded (and out of the search);
            # the admin shows it without an embedding. Retrying would not help.
            logger.error("embed_reference_image: reference image %s cannot be decoded", reference_id)
            return None
    reference_image_set_embedding(reference_id=reference_id, embedding=vector, model_id=embedder.model_id)
    return embedder.model_id


def _refine_filter(filters: object) -> dict[str, str]:
    if not isinstance(filters, dict):
        return {}
    return {key: str(value) for key, value in filters.items() if key in REFINE_FIELDS and value}


def _rejected_implants(submission_id: int) -> Sequence[int]:
    return list(
        DentistFeedback.objects.filter(submission_id=submission_id, verdict=Verdict.NOT_THIS).values_list(
            "implant_id", flat=True
        )
    )


def _last_attempt(submission: Submission) -> bool:
    """django-q delivers a task that raised again, up to max_attempts: on the last one a transient
    failure is reported to the dentist (failed, with a reason) instead of leaving the submission
    in "processing" for ever."""
    return submission.attempts >= settings.Q_CLUSTER.get("max_attempts", 1)


# --- processing submissions, in batches ---------------------------------------------------------
#
# A task processes its own submission and, when others are waiting (a burst of webhooks), claims up
# to RAIOX_PROCESS_BATCH - 1 of them (``submission_claim_waiting``) and processes them together:
# downloads and image decoding in a few threads (no database there: Pillow, zlib and the network
# release the GIL), one forward pass of the model for every image to embed, then the search and
# the result of each. So a burst drains near the model's batched rate instead of one image per
# task. Every submission still ends alone: a poison image fails only its submission; a transient
# error (network, storage) of a claimed submission releases it to its own task, which django-q
# delivers as usual; the task's own submission keeps the single-task behaviour (raise, retried,
# reported on the last attempt). Each claimed submission's own task stays queued and finds it
# finished ("already done"): nothing is acknowledged for it by another task, so a worker killed
# mid-batch loses nothing (see ``submission_start_processing`` for the lease).

_prepare_pool: ThreadPoolExecutor | None = None


def _in_threads(func: Callable[[_Item], object], items: list[_Item]) -> list[tuple[object, BaseException | None]]:
    """``func(item)`` for each item, in the worker's prepare threads when there are several;
    (result, None) or (None, exception) per item, in order."""

    def call(item: _Item) -> tuple[object, BaseException | None]:
        try:
            return func(item), None
        except Exception as exc:
            return None, exc

    threads = max(1, settings.RAIOX_PREPARE_THREADS)
    if len(items) < 2 or threads < 2:
        return [call(item) for item in items]
    global _prepare_pool
    if _prepare_pool is None:
        _prepare_pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="prepare")
    return list(_prepare_pool.map(call, items))


@dataclass
class _Item:
    """One submission of a batch, on its way to a result."""

    submission: Submission
    own: bool  # the task's own submission (the others were claimed)
    vector: list[float] | None = None
    data: bytes | None = None  # the validated PNG, when this task downloaded it
    image: object = None  # decoded (PIL, RGB): the finder's film, cut into regions when several
    outcome: str | None = None  # "done", "failed" or "released" (back to its own task)
    error: BaseException | None = None  # the own submission's transient error, raised at the end
    # What the finder decided (``_decide``): "regions" (the film has regions: no whole-film
    # answer), "none" (a film where no fixture was found), "several" (one region per fixture),
    # "one" (a fixture, or the whole region of a child, to embed and search).
    plan: str = "one"
    views: list = field(default_factory=list)  # CanonicalView(s) to embed (two: apex uncertain)
    vectors: list = field(default_factory=list)  # one per view
    found: list | None = None  # the fixtures as recorded (Submission.fixtures); None: finder did not run
    found_fixtures: list = field(default_factory=list)  # the Fixture objects, best first
    problems: list[str] = field(default_factory=list)  # quality codes
    both_orientations: bool = False  # the apex end was uncertain: both orientations compared
    reused: bool = False  # the finding and embedding of an identical film were taken (``_reuse_finding``)

    @property
    def pk(self) -> int:
        return self.submission.pk

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def is_film(self) -> bool:
        return self.submission.parent_id is None


def _fail(item: _Item, reason: str) -> None:
    submission_services.submission_fail(submission_id=item.pk, reason=reason)
    item.outcome = "failed"


def _transient(item: _Item, exc: BaseException, last_reason: str) -> None:
    """Network or storage trouble: the own submission raises (django-q delivers the task again) or,
    on its last attempt, fails with ``last_reason``; a claimed one goes back to its own task."""
    if item.own and _last_attempt(item.submission):
        logger.warning("process_submission: submission %s: %s, giving up", item.pk, type(exc).__name__)
        _fail(item, last_reason)
        return
    submission_services.submission_release(submission_id=item.pk, count_attempt=item.own)
    item.outcome = "released"
    if item.own:
        item.error = exc


def _decode(item: _Item) -> ValidatedImage | None:
    return submission_services.submission_decode_pending_image(item.submission)


def _prepare(items: list[_Item]) -> None:
    """Decode the images (intake kept the original, reading its headers only) or fetch the ones
    senders gave as a URL (Jotform keeps uploads on its own host): the worker does both, never the
    web process, several at once in the prepare threads; each result is stored by the service."""
    for item, (image, exc) in zip(items, _in_threads(_decode, items), strict=True):
        if exc is None:
            if image is None:
                continue  # decoded already
            try:
                item.submission = submission_services.submission_attach_image(submission_id=item.pk, image=image)
                item.data = image.content
            except Exception as store_exc:  # storage unreachable
                _transient(item, store_exc, STORAGE_UNREACHABLE)
        elif isinstance(exc, InvalidImage):  # poison: a crafted or broken file never decodes
            logger.warning("process_submission: submission %s has an unreadable image", item.pk)
            # A stored original passed the intake's header check: its pixel data is what is broken.
            _fail(item, UNREADABLE_IMAGE if item.submission.image else exc.message)
        elif isinstance(exc, ApplicationError):  # permanent: 404, too big, refused host, file gone
            _fail(item, exc.message)
        else:  # transient: network, 5xx, storage
            _transient(item, exc, STORAGE_UNREACHABLE if item.submission.image else REMOTE_UNREACHABLE)


def _load(embedder: Embedder) -> Callable[[_Item], object]:
    def load(item: _Item) -> object:
        if item.data is not None:
            data = item.data
        else:
            try:
                data = _read(item.submission.image.name)
            except FileNotFoundError as exc:  # gone for good: a retry cannot bring it back
                raise PoisonImage(MISSING_IMAGE) from exc
        try:
            image = embedder.load_image(data)
        except Exception as exc:  # any decoder error: this file will never decode
            raise PoisonImage(UNREADABLE_IMAGE) from exc
        try:
            _decide(item, image)
        except Exception:
            # The finder must never cost the dentist the answer: the whole picture is matched as
            # before the finder existed, and nothing is said about fixtures.
            logger.exception("process_submission: fixture finder failed on submission %s", item.pk)
            whole = canonical.whole_picture(*image.size)
            item.plan, item.found, item.problems, item.views = "one", None, [], [canonical.canonical_view(image, whole)]
        return image

    return load


def _decide(item: _Item, image: object) -> None:
    """Run the finder on the decoded picture and decide what this submission's answer is
    (``canonical.answer``, the rule evaluation frames films by too; see ``submission_process``)."""
    grey = fixture_finder.as_grey(image)
    report = fixture_finder.find_fixtures(grey)  # looked up here: tests may substitute the finder
    carried = (item.submission.crop_box or {}).get("problems", []) if not item.is_film else ()
    decided = canonical.answer(grey, report, region=not item.is_film, carried=carried)
    item.found = [{**f.as_json(), "number": n} for n, f in enumerate(report.numbered(), start=1)]
    item.found_fixtures, item.problems = decided.fixtures, decided.problems
    item.plan, item.views = decided.plan, decided.views
    item.both_orientations = decided.both_orientations


def _finding_key(item: _Item, model_id: str) -> tuple[str, str] | None:
    """What makes two films' findings the same: identical pixels (``content_hash``) read by the
    same model id — which carries ``canonical.PREPROCESS_VERSION``, so a change of the finder or of
    the canonical view never reuses a stale finding. None: nothing to reuse (a region: its quality
    problems include ones carried from its film; no hash yet)."""
    if not item.is_film or not item.submission.content_hash:
        return None
    return item.submission.content_hash, model_id


def _reuse_finding(item: _Item, model_id: str) -> bool:
    """Take the finding of an earlier identical film answered with one fixture — its fixture,
    quality problems, both-orientations flag, and the embedding of the view it kept — before
    anything is decoded: the same pixels, the same finder and model give the same answer, so the
    picture is neither decoded nor read again (a burst repeating pictures drains at the search's
    pace). True when taken."""
    key = _finding_key(item, model_id)
    if key is None:
        return False
    content_hash, model = key
    earlier = (
        Submission.objects.filter(
            content_hash=content_hash,
            parent__isnull=True,
            status=Status.DONE,
            embedding_model=model,
            embedding__isnull=False,
        )
        .annotate(found=Func(F("fixtures"), function="jsonb_array_length", output_field=IntegerField()))
        .filter(found=1)  # answered by its one fixture (not the whole picture after a finder failure)
        .exclude(pk=item.pk)
        .values("embedding", "fixtures", "quality_problems", "both_orientations")
        .first()
    )
    if earlier is None:
        return False
    item.plan, item.reused = "one", True
    item.found = [dict(f) for f in earlier["fixtures"]]
    item.problems = list(earlier["quality_problems"])
    item.both_orientations = bool(earlier["both_orientations"])
    item.vectors = [[float(x) for x in earlier["embedding"]]]
    return True


def _take_finding(item: _Item, first: _Item) -> None:
    """An identical film of the same batch (same ``_finding_key``): ``first``'s finding as it is."""
    item.image, item.plan, item.views = first.image, first.plan, first.views
    item.found = None if first.found is None else [dict(f) for f in first.found]
    item.found_fixtures, item.problems = list(first.found_fixtures), list(first.problems)
    item.both_orientations = first.both_orientations


def _load_all(embedder: Embedder, items: list[_Item]) -> None:
    for item, (image, exc) in zip(items, _in_threads(_load(embedder), items), strict=True):
        if isinstance(exc, PoisonImage):
            logger.warning("process_submission: submission %s has an unreadable image", item.pk)
            _fail(item, str(exc))
        elif exc is not None:  # storage unreachable (outage, network)
            _transient(item, exc, STORAGE_UNREACHABLE)
        else:
            item.image = image


def _embed(embedder: Embedder, items: list[_Item]) -> None:
    """Take the finding of an identical film answered before (``_reuse_finding``), else decode each
    picture and run the finder on it (identical films of the batch once), then one forward pass
    for every view to embed (identical pictures once). Should the batch fail, each view is embedded
    alone, so only the picture at fault fails."""
    model_id = embedder.model_id
    to_load: list[_Item] = []
    firsts: dict[tuple[str, str], _Item] = {}
    followers: list[tuple[_Item, _Item]] = []
    for item in items:
        if _reuse_finding(item, model_id):
            continue
        key = _finding_key(item, model_id)
        if key is not None and key in firsts:
            followers.append((item, firsts[key]))
            continue
        if key is not None:
            firsts[key] = item
        to_load.append(item)
    _load_all(embedder, to_load)
    # A follower whose first could not be read is read on its own (its own reason, its own retry).
    _load_all(embedder, [item for item, first in followers if first.finished])
    for item, first in followers:
        if not first.finished:
            _take_finding(item, first)
    by_key: dict[tuple[str, int], list[tuple[_Item, int]]] = {}
    for item in items:
        if item.finished or item.plan != "one" or item.reused:
            continue
        if len(item.views) == 1:
            reused = reusable_embedding(item.submission.content_hash, model_id, exclude_submission=item.pk)
            if reused is not None:
                item.vectors = [reused]  # identical pixels, the same finder: the same view
                continue
        item.vectors = [None] * len(item.views)
        for n, _view in enumerate(item.views):
            key = (item.submission.content_hash or f"#{item.pk}", n)
            by_key.setdefault(key, []).append((item, n))
    groups = list(by_key.values())
    if not groups:
        return
    first_views = [group[0][0].views[group[0][1]] for group in groups]
    try:
        vectors = embedder.embed_images(first_views)
    except Exception:
        logger.exception("process_submission: batch of %s images failed; embedding one by one", len(groups))
        vectors = []
        for view in first_views:
            try:
                vectors.append(embedder.embed_images([view])[0])
            except Exception:
                vectors.append(None)
    for group, vector in zip(groups, vectors, strict=True):
        for item, n in group:
            item.vectors[n] = vector
    for item in items:
        if not item.finished and item.plan == "one" and any(v is None for v in item.vectors):
            _fail(item, UNREADABLE_IMAGE)


def _search(item: _Item, vector: list[float], model_id: str) -> list:
    return nearest_implants(
        vector,
        model_id=model_id,
        implant_filter=_refine_filter(item.submission.refine_filters),
        exclude_implants=_rejected_implants(item.pk),
    )


def _record(item: _Item, model_id: str, calibration: Calibration | None = None) -> None:
    record = submission_services.submission_record_result
    if item.plan == "several":
        submission_services.submission_create_found_regions(
            submission_id=item.pk,
            image=item.image,
            fixtures=[{**f.as_json(), "problems": list(f.problems)} for f in item.found_fixtures],
            quality_problems=item.problems,
            model_id=model_id,
        )
        return
    if item.plan in ("regions", "none"):
        # No candidates: the dentist's regions answer (each its own submission), or nothing found.
        record(
            submission_id=item.pk,
            embedding=None,
            model_id=model_id,
            candidates=[],
            fixtures=item.found if item.plan == "none" else None,
            quality_problems=item.problems,
        )
        return
    vectors = [item.vector] if item.vector is not None else item.vectors
    # Two orientations (apex end uncertain): both searched, the better top similarity kept.
    searched = [(vector, _search(item, vector, model_id)) for vector in vectors]
    vector, hits = max(searched, key=lambda pair: pair[1][0].similarity if pair[1] else -2.0)
    scores = calibrated(calibration, [h.similarity for h in hits])
    record(
        submission_id=item.pk,
        embedding=vector,
        model_id=model_id,
        candidates=[
            submission_services.MatchCandidate(h.implant_id, h.reference_image_id, h.similarity, p, band)
            for h, (p, band) in zip(hits, scores, strict=True)
        ],
        fixtures=item.found if item.vector is None else None,  # refine: the finding stays as it was
        quality_problems=item.problems,
        both_orientations=item.both_orientations,
    )


def _process_batch(items: list[_Item], embedder: Embedder) -> None:
    model_id = embedder.model_id
    for item in items:
        s = item.submission
        if item.is_film and s.crops.exists():
            item.plan = "regions"  # the dentist's regions (or ones found before) answer, not the film
        elif s.embedding is not None and s.embedding_model == model_id:
            item.vector = [float(x) for x in s.embedding]  # refine: only the search runs again
    started = time.monotonic()
    _prepare(
        [
            i
            for i in items
            if i.vector is None
            and not i.submission.content_hash
            # A region without pixels yet is cut from its film here (``submission_decode_pending_image``).
            and (i.submission.image or i.submission.remote_image_url or i.submission.parent_id)
        ]
    )
    to_embed = []
    for item in items:
        if item.finished or item.vector is not None or item.plan == "regions":
            continue
        if not item.submission.image:
            _fail(item, NO_IMAGE)
        else:
            to_embed.append(item)
    prepared = time.monotonic()
    _embed(embedder, to_embed)
    embedded = time.monotonic()
    calibration = active_calibration(model_id=model_id) if any(not i.finished for i in items) else None
    for item in items:
        if item.finished:
            continue
        try:
            _record(item, model_id, calibration)
            item.outcome = "done"
        except Exception as exc:  # database trouble: the own task raises, the others go back
            item.outcome = "released"
            if item.own:
                item.error = exc
            else:
                with contextlib.suppress(Exception):
                    submission_services.submission_release(submission_id=item.pk, count_attempt=False)
    if len(items) > 1:
        logger.info(
            "process_submission: batch of %s submissions, %s to embed (%s findings reused): "
            "prepare %.2f s, find and embed %.2f s, search and record %.2f s",
            len(items),
            len(to_embed),
            sum(item.reused for item in to_embed),
            prepared - started,
            embedded - prepared,
            time.monotonic() - embedded,
        )


def _start_processing(submission_id: int) -> Submission | None:
    """``submission_start_processing``; while another worker's batch has the submission (two
    worker processes: the other one claimed it), wait for that batch to record it, woken by its
    result's NOTIFY (a batch takes seconds), re-checking each second for a lease that ends without
    a result. A worker killed mid-batch leaves its lease to expire (Q_CLUSTER timeout): past half
    of it the task raises ``SubmissionBusy`` and django-q delivers it again later, so a task never
    waits out its own timeout."""
    try:
        return submission_services.submission_start_processing(submission_id=submission_id)
    except submission_services.SubmissionBusy:
        pass
    deadline = time.monotonic() + settings.Q_CLUSTER.get("timeout", 120) / 2
    with notifications(submission_services.RESULT_CHANNEL) as wait:
        while True:
            try:
                return submission_services.submission_start_processing(submission_id=submission_id)
            except submission_services.SubmissionBusy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                wait(min(1.0, remaining), str(submission_id))


def submission_process(*, submission_id: int) -> str:
    """Find the fixtures in a submission's X-ray, embed the canonical view (or reuse an
    embedding), search, save the Matches, mark done — and the same for up to
    RAIOX_PROCESS_BATCH - 1 others waiting, in one batch (see above).

    What the finder (``matching.fixtures``) decides:

    - a region (``parent`` set: the dentist's, the crop tool's or the finder's): its best fixture,
      else the whole region, apex end unknown (the dentist said an implant is there);
    - a film with regions: never answered as a whole (done, no candidates; each region answers);
    - a film with no fixture: done, no candidates, "nothing found" (``Submission.fixtures == []``);
    - a film with one fixture: that fixture's canonical view is searched;
    - a film with several: one region (child submission) per fixture, queued
      (``submission_create_found_regions``), the film done with no candidates.

    Where the apex end is uncertain, both orientations are searched and the better top similarity
    kept (``both_orientations``). Quality problems (codes) are recorded for the page to tell the
    dentist what to fix. Should the finder itself fail, the whole picture is matched as before.

    Also the re-ranking step of "refine": when a submission already has an embedding of the
    current model, only the search runs again, under ``refine_filters`` and without the implants
    the dentist rejected.
    """
    if not Submission.objects.filter(pk=submission_id).exists():
        return "missing"  # deleted before the worker got to it
    submission = _start_processing(submission_id)
    if submission is None:
        return "already done"  # finished by an earlier delivery, or in another task's batch
    embedder = worker_embedder()
    others = settings.RAIOX_PROCESS_BATCH - 1
    claimed = submission_services.submission_claim_waiting(limit=others, exclude=submission_id)
    items = [_Item(submission, own=True), *(_Item(other, own=False) for other in claimed)]
    _process_batch(items, embedder)
    own = items[0]
    if own.error is not None:
        raise own.error
    return own.outcome or "failed"


# --- training runs (manage.py train_matcher, the scheduled retraining) ---------------------------


class ActivationRefused(ApplicationError):
    pass


@transaction.atomic
def training_run_start(
    *, base_model_id: str, untrained_start: bool, device: str, trigger: str, parameters: dict
) -> TrainingRun:
    run = TrainingRun(
        base_model_id=base_model_id,
        untrained_start=untrained_start,
        device=device,
        trigger=trigger,
        parameters=parameters,
    )
    run.full_clean()
    run.save()
    return run


@transaction.atomic
def training_run_finish(
    *,
    run_id: int,
    model_id: str,
    checkpoint_path: str,
    sets: dict,
    curves: list[dict],
    results: dict,
    seconds: float,
) -> TrainingRun:
    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    run.status = TrainingStatus.DONE
    run.model_id = model_id
    run.checkpoint_path = checkpoint_path
    run.sets, run.curves, run.results = sets, curves, results
    run.seconds = round(seconds, 1)
    run.finished_at = timezone.now()
    run.full_clean()
    run.save()
    return run


@transaction.atomic
def training_run_fail(*, run_id: int, message: str, seconds: float = 0.0) -> TrainingRun:
    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    run.status = TrainingStatus.FAILED
    run.message = message[:2000]
    run.seconds = round(seconds, 1)
    run.finished_at = timezone.now()
    run.full_clean()
    run.save()
    return run


def training_run_activate(*, run_id: int, log: Callable[[str], object] = print) -> TrainingRun:
    """Switch the workers to a run's model — only when it beat the running model on its held-out
    set — through the safe model switch: the activation manifest names the checkpoint (every
    process's ``get_embedder`` builds it on its next job, no restart), then the catalogue is
    re-embedded by the new model (``manage.py reembed``); the search only ever compares vectors
    of one model id. The new model has no calibration yet: it starts uncalibrated."""
    import json
    from pathlib import Path

    from django.core.management import call_command

    from matching.embedder import ACTIVE_MANIFEST, active_manifest

    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        raise ActivationRefused(f"Treinamento #{run_id} não encontrado.")
    if run.status != TrainingStatus.DONE or not run.checkpoint_path or not Path(run.checkpoint_path).is_file():
        raise ActivationRefused(f"O treinamento #{run.pk} não terminou com um checkpoint: nada para ativar.")
    results = run.results or {}
    if not results.get("better"):
        new, old = results.get("new", {}).get("all", {}), results.get("running", {}).get("all", {})
        raise ActivationRefused(
            f"Ativação recusada: o modelo novo {run.model_id} não é melhor que o atual no conjunto retido "
            f"(top-1 {new.get('top1', 0):.1%} contra {old.get('top1', 0):.1%}, top-3 {new.get('top3', 0):.1%} "
            f"contra {old.get('top3', 0):.1%}). Os workers continuam com o modelo atual."
        )
    current = worker_embedder()
    compared = results.get("running", {}).get("model_id")
    if current.model_id != compared:
        raise ActivationRefused(
            f"Ativação recusada: o treinamento #{run.pk} foi comparado com {compared}, "
            f"mas os workers rodam {current.model_id}. Treine de novo contra o modelo atual."
        )
    base_weights_id = (current.spec.trained or {}).get("base_weights_id") or current.spec.weights_id
    folder = Path(settings.RAIOX_CLIP_CACHE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    previous = active_manifest()
    manifest = {
        "path": run.checkpoint_path,
        "model_id": run.model_id,
        "run": run.pk,
        "base_weights_id": base_weights_id,
        "activated_at": timezone.now().isoformat(),
        "previous": previous,
    }
    partial = folder / (ACTIVE_MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, folder / ACTIVE_MANIFEST)  # atomic: a worker reads the old or the new one
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        run.activated_at = timezone.now()
        run.full_clean()
        run.save()
    switched = worker_embedder()
    log(f"Modelo ativo: {switched.model_id}; recalculando os embeddings do catálogo (reembed)")
    call_command("reembed", "--stale")
    return run


def training_run_deactivate(*, log: Callable[[str], object] = print) -> str:
    """Roll back an activation the same safe way: the previous manifest comes back (or none: the
    configured model), every process follows it on its next job, and the catalogue is re-embedded
    by that model. Returns the model id now running."""
    import json
    from pathlib import Path

    from django.core.management import call_command

    from matching.embedder import ACTIVE_MANIFEST, active_manifest

    current = active_manifest()
    if current is None:
        raise ActivationRefused("Nenhum modelo treinado está ativo: os workers já rodam o modelo configurado.")
    target = Path(settings.RAIOX_CLIP_CACHE_DIR) / ACTIVE_MANIFEST
    previous = current.get("previous")
    if previous:
        partial = target.with_name(ACTIVE_MANIFEST + ".partial")
        partial.write_text(json.dumps(previous, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, target)
    else:
        target.unlink()
    model_id = worker_embedder().model_id
    log(f"Modelo ativo: {model_id}; recalculando os embeddings do catálogo (reembed)")
    call_command("reembed", "--stale")
    return model_id
