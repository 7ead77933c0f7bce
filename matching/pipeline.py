"""The batch pipeline of the worker: a task's own submission and the ones it claimed, prepared
(downloaded or decoded, or copied from identical bytes sent before), their fixtures found, embedded
in one forward pass, searched and recorded, each ending alone (``matching.services.submission_process``
drives it)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import F, Func, IntegerField

from implants.models import REFINE_FIELDS, ReferenceImage
from kernel.errors import ApplicationError
from kernel.imaging import InvalidImage, ValidatedImage
from kernel.queue import max_attempts
from matching import canonical
from matching import fixtures as fixture_finder
from matching.calibration import active_calibration, calibrated
from matching.embedder import Embedder
from matching.images import UNREADABLE_IMAGE, image_load, stored_image_load
from matching.models import Calibration
from matching.search import nearest_implants
from submissions import services as submission_services
from submissions.models import DentistFeedback, Status, Submission, Verdict

logger = logging.getLogger(__name__)

REMOTE_UNREACHABLE = "Não foi possível baixar a imagem do servidor de origem. Envie-a novamente."
STORAGE_UNREACHABLE = (
    "Não conseguimos ler a radiografia no armazenamento por um problema temporário nosso. Envie-a novamente."
)
NO_IMAGE = "Nenhuma imagem foi recebida com este envio. Envie a radiografia novamente."


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
    return submission.attempts >= max_attempts()


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


def _in_threads(
    func: Callable[[BatchEntry], object], items: list[BatchEntry]
) -> list[tuple[object, BaseException | None]]:
    """``func(item)`` for each item, in the worker's prepare threads when there are several;
    (result, None) or (None, exception) per item, in order."""

    def call(item: BatchEntry) -> tuple[object, BaseException | None]:
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
class BatchEntry:
    """One submission of a batch, on its way to a result."""

    submission: Submission
    own: bool  # the task's own submission (the others were claimed)
    vector: list[float] | None = None
    data: bytes | None = None  # the validated PNG, when this task downloaded it
    original: tuple[bytes, str] | None = None  # while preparing: the bytes as sent and their hash
    twin: tuple[str, str] | None = None  # while preparing: (PNG, pixel hash) of the same bytes sent before
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


def _fail(item: BatchEntry, reason: str) -> None:
    submission_services.submission_fail(submission_id=item.pk, reason=reason)
    item.outcome = "failed"


def _transient(item: BatchEntry, exc: BaseException, last_reason: str) -> None:
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


def _read_original(item: BatchEntry) -> tuple[bytes, str] | None:
    return submission_services.submission_read_pending_original(item.submission)


def _decode(item: BatchEntry) -> ValidatedImage | None:
    if item.twin is not None:
        name, content_hash = item.twin
        try:
            return submission_services.stored_image_copy(name=name, content_hash=content_hash)
        except FileNotFoundError:
            pass  # the twin's file went meanwhile (deleted, retention): decode the bytes as sent
    if item.original is not None:
        return submission_services.submission_decode_original(item.submission, item.original[0])
    return submission_services.submission_decode_pending_image(item.submission)  # a region: cut here


def _prepare_failed(item: BatchEntry, exc: BaseException) -> None:
    if isinstance(exc, InvalidImage):  # poison: a crafted or broken file never decodes
        logger.warning("process_submission: submission %s has an unreadable image", item.pk)
        # A stored original passed the intake's header check: its pixel data is what is broken.
        _fail(item, UNREADABLE_IMAGE if item.submission.image else exc.message)
    elif isinstance(exc, ApplicationError):  # permanent: 404, too big, refused host, file gone
        _fail(item, exc.message)
    else:  # transient: network, 5xx, storage
        _transient(item, exc, STORAGE_UNREACHABLE if item.submission.image else REMOTE_UNREACHABLE)


def _attach(item: BatchEntry, image: ValidatedImage) -> bool:
    original_hash = item.original[1] if item.original is not None else ""
    item.original = None  # the bytes as sent are not needed any more (a batch holds 16)
    try:
        item.submission = submission_services.submission_attach_image(
            submission_id=item.pk, image=image, original_hash=original_hash
        )
    except Exception as store_exc:  # storage unreachable
        _transient(item, store_exc, STORAGE_UNREACHABLE)
        return False
    item.data = image.content
    return True


def _decode_all(items: list[BatchEntry]) -> dict[int, ValidatedImage]:
    """Decode (or copy a twin's PNG) in the prepare threads, then store each; the images stored."""
    stored: dict[int, ValidatedImage] = {}
    for item, (image, exc) in zip(items, _in_threads(_decode, items), strict=True):
        if exc is not None:
            _prepare_failed(item, exc)
        elif image is not None and _attach(item, image):  # None: decoded already
            stored[item.pk] = image
    return stored


def _prepare(items: list[BatchEntry]) -> None:
    """Decode the images (intake kept the original, reading its headers only) or fetch the ones
    senders gave as a URL (Jotform keeps uploads on its own host): the worker does both, never the
    web process, several at once in the prepare threads; each result is stored by the service.

    Bytes sent before are not decoded again: the bytes as sent are read (and hashed) first, in the
    threads; the main thread then looks for a submission prepared from the same bytes (the
    database stays out of the threads) and, where there is one, its normalised PNG and pixel hash
    are copied; identical bytes within the batch are decoded once."""
    read: list[BatchEntry] = []
    for item, (original, exc) in zip(items, _in_threads(_read_original, items), strict=True):
        if exc is not None:
            _prepare_failed(item, exc)
        else:
            item.original = original  # None: a region, cut from its film by ``_decode``
            read.append(item)
    to_decode: list[BatchEntry] = []
    firsts: dict[str, BatchEntry] = {}
    followers: list[tuple[BatchEntry, BatchEntry]] = []
    for item in read:
        if item.original is not None:
            original_hash = item.original[1]
            item.twin = submission_services.submission_prepared_twin(original_hash=original_hash, exclude=item.pk)
            if item.twin is None and original_hash in firsts:
                followers.append((item, firsts[original_hash]))
                continue
            firsts.setdefault(original_hash, item)
        to_decode.append(item)
    stored = _decode_all(to_decode)
    for item, first in followers:
        if first.pk in stored:
            _attach(item, stored[first.pk])  # stored again under the follower's own key
    # A follower whose first could not be decoded or stored is decoded on its own (its own reason).
    _decode_all([item for item, first in followers if first.pk not in stored])


def _load(embedder: Embedder) -> Callable[[BatchEntry], object]:
    def load(item: BatchEntry) -> object:
        if item.data is not None:
            image = image_load(embedder, item.data)
        else:
            image = stored_image_load(embedder, item.submission.image.name)
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


def _decide(item: BatchEntry, image: object) -> None:
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


def _finding_key(item: BatchEntry, model_id: str) -> tuple[str, str] | None:
    """What makes two films' findings the same: identical pixels (``content_hash``) read by the
    same model id — which carries ``canonical.PREPROCESS_VERSION``, so a change of the finder or of
    the canonical view never reuses a stale finding. None: nothing to reuse (a region: its quality
    problems include ones carried from its film; no hash yet)."""
    if not item.is_film or not item.submission.content_hash:
        return None
    return item.submission.content_hash, model_id


def _reuse_finding(item: BatchEntry, model_id: str) -> bool:
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


def _take_finding(item: BatchEntry, first: BatchEntry) -> None:
    """An identical film of the same batch (same ``_finding_key``): ``first``'s finding as it is."""
    item.image, item.plan, item.views = first.image, first.plan, first.views
    item.found = None if first.found is None else [dict(f) for f in first.found]
    item.found_fixtures, item.problems = list(first.found_fixtures), list(first.problems)
    item.both_orientations = first.both_orientations


def _load_all(embedder: Embedder, items: list[BatchEntry]) -> None:
    for item, (image, exc) in zip(items, _in_threads(_load(embedder), items), strict=True):
        if isinstance(exc, InvalidImage):
            logger.warning("process_submission: submission %s has an unreadable image", item.pk)
            _fail(item, exc.message)
        elif exc is not None:  # storage unreachable (outage, network)
            _transient(item, exc, STORAGE_UNREACHABLE)
        else:
            item.image = image


def _embed(embedder: Embedder, items: list[BatchEntry]) -> None:
    """Take the finding of an identical film answered before (``_reuse_finding``), else decode each
    picture and run the finder on it (identical films of the batch once), then one forward pass
    for every view to embed (identical pictures once). Should the batch fail, each view is embedded
    alone, so only the picture at fault fails."""
    model_id = embedder.model_id
    to_load: list[BatchEntry] = []
    firsts: dict[tuple[str, str], BatchEntry] = {}
    followers: list[tuple[BatchEntry, BatchEntry]] = []
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
    by_key: dict[tuple[str, int], list[tuple[BatchEntry, int]]] = {}
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


def _search(item: BatchEntry, vector: list[float], model_id: str) -> list:
    return nearest_implants(
        vector,
        model_id=model_id,
        implant_filter=_refine_filter(item.submission.refine_filters),
        exclude_implants=_rejected_implants(item.pk),
    )


def _record(item: BatchEntry, model_id: str, calibration: Calibration | None = None) -> None:
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


def process_batch(items: list[BatchEntry], embedder: Embedder) -> None:
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
