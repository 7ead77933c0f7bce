"""The matching work, run by the workers: embed an X-ray or a catalogue image, search, record.

Typed keyword-only functions called by ``matching.tasks`` (which only take ids). Writes go through
the owning app's services (``submissions.services``, ``implants.services``); the workers' own state
(``WorkerState``) is ``matching.workers``, the batch a task processes ``matching.pipeline``, the
training runs are here.

Both jobs are idempotent: a re-delivered task (worker killed, retry) leaves one result. Transient
failures (storage or database unreachable) raise, so django-q retries the task (Q_CLUSTER retry /
max_attempts); an image that cannot be decoded fails its own submission with a reason and returns
normally, so it is not retried and never blocks the queue. Logs carry ids only, never patient data.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from implants.models import ReferenceImage
from implants.services import reference_image_set_embedding
from kernel.errors import ApplicationError
from kernel.imaging import InvalidImage
from kernel.queue import RESULT_CHANNEL, notifications, task_timeout
from matching.embedder import Embedder
from matching.images import MISSING_CODE, stored_image_load
from matching.models import TrainingActivation, TrainingRun, TrainingStatus
from matching.pipeline import BatchEntry, process_batch, reusable_embedding
from matching.workers import worker_embedder
from submissions import services as submission_services
from submissions.models import Submission

logger = logging.getLogger(__name__)


# --- the jobs ----------------------------------------------------------------------------------


def _embed_stored(embedder: Embedder, name: str) -> list[float]:
    return embedder.embed_images([stored_image_load(embedder, name)])[0]


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
        except InvalidImage:
            # A catalogue image that cannot be decoded stays unembedded (and out of the search);
            # the admin shows it without an embedding. Retrying would not help.
            logger.error("embed_reference_image: reference image %s cannot be decoded", reference_id)
            return None
    reference_image_set_embedding(reference_id=reference_id, embedding=vector, model_id=embedder.model_id)
    return embedder.model_id


def reference_images_embed(*, reference_ids: list[int]) -> int:
    """Embed the given reference images with the running model, one forward pass (imports of a
    catalogue or of the old system; idempotent: rows already embedded by the running model are
    skipped, an old embedding kept under another model id is replaced); returns how many were
    written."""
    embedder = worker_embedder()
    model_id = embedder.model_id
    rows = list(
        ReferenceImage.objects.filter(pk__in=list(reference_ids)).values_list(
            "pk", "image", "content_hash", "embedding_model", "embedding"
        )
    )
    written = 0
    pending: list[tuple[int, object]] = []
    for pk, name, content_hash, current_model, current in rows:
        if current is not None and current_model == model_id:
            continue  # already right (kept legacy embedding of this model, or a re-delivered task)
        vector = reusable_embedding(content_hash, model_id, exclude_reference=pk)
        if vector is not None:
            reference_image_set_embedding(reference_id=pk, embedding=vector, model_id=model_id)
            written += 1
            continue
        try:
            pending.append((pk, stored_image_load(embedder, name)))
        except InvalidImage as exc:  # retrying will not help; the admin shows it pending
            what = "has no file" if exc.code == MISSING_CODE else "cannot be decoded"
            logger.error("embed_reference_images: reference image %s %s", pk, what)
        except Exception:  # storage trouble: skipped like an undecodable one, as it always was
            logger.error("embed_reference_images: reference image %s cannot be decoded", pk)
    vectors = embedder.embed_images([image for _, image in pending])
    for (pk, _), vector in zip(pending, vectors, strict=True):
        reference_image_set_embedding(reference_id=pk, embedding=vector, model_id=model_id)
        written += 1
    return written


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
    deadline = time.monotonic() + task_timeout() / 2
    with notifications(RESULT_CHANNEL) as wait:
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
    items = [BatchEntry(submission, own=True), *(BatchEntry(other, own=False) for other in claimed)]
    process_batch(items, embedder)
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


REEMBED_TASK = "matching.tasks.reembed_catalogue"


def catalogue_reembed_stale(*, quiet: bool = True) -> None:
    """Bring the catalogue over to the running model (``manage.py reembed --stale``): what a model
    switch ends with, here (the command, with its progress) or in a worker (``REEMBED_TASK``,
    queued by the admin)."""
    from django.core.management import call_command

    if not quiet:
        call_command("reembed", "--stale")
        return
    with open(os.devnull, "w") as devnull:
        call_command("reembed", "--stale", stdout=devnull, stderr=devnull)


def _running_model_id(*, in_workers: bool) -> str | None:
    """The model the workers run: built here (a command), or as they report it (a web process,
    which never loads the model: ``matching.state``)."""
    if not in_workers:
        return worker_embedder().model_id
    from matching.state import model_state

    return model_state().model_id


def _reembed(*, in_workers: bool, log: Callable[[str], object]) -> None:
    """After the manifest changed: the catalogue re-embedded by the model it names — now, or by a
    worker (every process's ``get_embedder`` follows the manifest on its next job)."""
    if in_workers:
        from kernel.queue import enqueue_on_commit

        enqueue_on_commit(REEMBED_TASK, group="embed")
        log("Modelo trocado; os workers recalculam os embeddings do catálogo (reembed)")
        return
    log(f"Modelo ativo: {worker_embedder().model_id}; recalculando os embeddings do catálogo (reembed)")
    catalogue_reembed_stale(quiet=False)


def _write_manifest(manifest: dict | None) -> None:
    """The activation manifest (``matching.embedder.ACTIVE_MANIFEST``) replaced atomically (a worker
    reads the old or the new one), or removed (None: the configured model)."""
    import json
    from pathlib import Path

    from matching.embedder import ACTIVE_MANIFEST

    folder = Path(settings.RAIOX_CLIP_CACHE_DIR)
    if manifest is None:
        (folder / ACTIVE_MANIFEST).unlink(missing_ok=True)
        return
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / (ACTIVE_MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, folder / ACTIVE_MANIFEST)


def training_run_activate(
    *, run_id: int, user=None, in_workers: bool = False, log: Callable[[str], object] = print
) -> TrainingRun:
    """Switch the workers to a run's model — only when it beat the running model on its held-out
    set — through the safe model switch: the activation manifest names the checkpoint (every
    process's ``get_embedder`` builds it on its next job, no restart), then the catalogue is
    re-embedded by the new model (``manage.py reembed``); the search only ever compares vectors
    of one model id. The new model has no calibration yet: it starts uncalibrated. Audited in
    ``TrainingActivation`` (who, when, from which model). ``in_workers`` (the admin): the running
    model is what the workers report and the re-embedding is queued for them, so the web process
    never loads the model."""
    from pathlib import Path

    from matching.embedder import active_manifest

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
    current = _running_model_id(in_workers=in_workers)
    compared = results.get("running", {}).get("model_id")
    if current != compared:
        running = current or "nenhum modelo informado por um worker"
        raise ActivationRefused(
            f"Ativação recusada: o treinamento #{run.pk} foi comparado com {compared}, "
            f"mas os workers rodam {running}. Treine de novo contra o modelo atual."
        )
    previous = active_manifest()
    _write_manifest(
        {
            "path": run.checkpoint_path,
            "model_id": run.model_id,
            "run": run.pk,
            "base_weights_id": _base_weights_id(run),
            "activated_at": timezone.now().isoformat(),
            "previous": previous,
        }
    )
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        run.activated_at = timezone.now()
        run.full_clean()
        run.save()
        _audit(run, TrainingActivation.Action.ACTIVATE, run.model_id, current or "", user, in_workers)
    _reembed(in_workers=in_workers, log=log)
    return run


def _base_weights_id(run: TrainingRun) -> str:
    """The configured weights id a run's checkpoint applies over (``matching.embedder``
    ``active_trained_spec`` compares it with the configured one): in its results, or (runs
    recorded before they kept it) in the checkpoint's own metadata."""
    if (run.results or {}).get("base_weights_id"):
        return run.results["base_weights_id"]
    from pathlib import Path

    from matching.embedder import trained_metadata

    return (trained_metadata(Path(run.checkpoint_path)) or {}).get("base_weights_id", "")


def _audit(run, action, model_id: str, previous_model_id: str, user, in_workers: bool) -> None:
    entry = TrainingActivation(
        run=run,
        action=action,
        model_id=model_id,
        previous_model_id=previous_model_id,
        user=user if getattr(user, "pk", None) else None,
        via="admin" if in_workers else "command",
    )
    entry.full_clean()
    entry.save()


def training_run_deactivate(*, user=None, in_workers: bool = False, log: Callable[[str], object] = print) -> str:
    """Roll back an activation the same safe way: the previous manifest comes back (or none: the
    configured model), every process follows it on its next job, and the catalogue is re-embedded
    by that model. Audited like an activation. Returns the model id now running ("" from the
    admin when it is the configured model: the workers report it)."""
    from matching.embedder import active_manifest

    current = active_manifest()
    if current is None:
        raise ActivationRefused("Nenhum modelo treinado está ativo: os workers já rodam o modelo configurado.")
    previous = current.get("previous") or None
    _write_manifest(previous)
    model_id = (previous or {}).get("model_id", "") if in_workers else worker_embedder().model_id
    with transaction.atomic():
        run = TrainingRun.objects.filter(pk=current.get("run")).first()
        _audit(run, TrainingActivation.Action.DEACTIVATE, model_id, current.get("model_id", ""), user, in_workers)
    _reembed(in_workers=in_workers, log=log)
    return model_id
