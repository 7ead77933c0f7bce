"""The product's knobs, all in one place: what a dentist may send, how the matcher answers, how long
intake waits, the confidence labels, the abuse limits, the thank-you page, result e-mails and
retention. Each is a ``RAIOX_*`` variable of the same name (deploy/env.example)."""

from __future__ import annotations

import os
from pathlib import Path

from raiox.settings.base import VAR_DIR
from raiox.settings.env import env, env_bool, env_float, env_int, env_rate

# --- What a dentist may send ------------------------------------------------------------------

# Largest X-ray file accepted, in bytes (uploads, webhook files and downloads alike).
RAIOX_MAX_UPLOAD_BYTES = env_int("RAIOX_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
# Largest image a decoder is handed, in pixels (width x height x samples; kernel.imaging).
RAIOX_MAX_IMAGE_PIXELS = env_int("RAIOX_MAX_IMAGE_PIXELS", 50_000_000)
# Smallest side, in pixels, of a film (kernel.imaging) and of a marked region.
RAIOX_MIN_IMAGE_SIDE = env_int("RAIOX_MIN_IMAGE_SIDE", 64)
# Implants a dentist may mark on one film (regions matched one by one).
RAIOX_MAX_REGIONS = env_int("RAIOX_MAX_REGIONS", 8)
# Room in a request body beyond the image for the form's other fields and multipart's framing:
# Django's limit below and the intake endpoints' cap before reading (kernel.http.max_intake_body).
UPLOAD_BODY_SLACK_BYTES = 1024 * 1024
# Django's own body limits: the largest upload plus that room.
DATA_UPLOAD_MAX_MEMORY_SIZE = RAIOX_MAX_UPLOAD_BYTES + UPLOAD_BODY_SLACK_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- The model and matching -------------------------------------------------------------------

# The open_clip architecture and its pretrained tag (or the path of trained weights).
RAIOX_CLIP_MODEL = env("RAIOX_CLIP_MODEL", "ViT-B-32")
RAIOX_CLIP_PRETRAINED = env("RAIOX_CLIP_PRETRAINED", "laion2b_s34b_b79k")
# Where fetch_model puts the weights and workers load them from (never downloaded at load time).
RAIOX_CLIP_CACHE_DIR = Path(env("RAIOX_CLIP_CACHE_DIR", str(VAR_DIR / "models")))
RAIOX_CLIP_DEVICE = env("RAIOX_CLIP_DEVICE")  # None: cuda when available, else cpu
# Faster CPU embeddings (matching.embedder; measured by bench/embedding.py against fp32):
# "int8" = dynamic int8 quantization of the model's linear layers; "" = fp32 (the default until
# the bench shows cosine and top-3 agreement >= 0.99 with the trained weights).
RAIOX_CLIP_QUANTIZE = env("RAIOX_CLIP_QUANTIZE", "")
# Torch intra-op threads of a worker process (0: torch's default, one per core).
RAIOX_TORCH_THREADS = env_int("RAIOX_TORCH_THREADS", 0)
# A worker that finds several submissions waiting processes up to this many in one task: one
# forward pass of the model, downloads and image decoding spread over RAIOX_PREPARE_THREADS threads
# (Pillow and zlib release the GIL). 1 turns batching off.
RAIOX_PROCESS_BATCH = env_int("RAIOX_PROCESS_BATCH", 16)
RAIOX_PREPARE_THREADS = env_int("RAIOX_PREPARE_THREADS", os.cpu_count() or 1)
# Memory the decodes of one process may hold at once (kernel.imaging.decode_image), in MB, counted
# from each header's width x height x bands: two huge films wait for each other while small ones
# run side by side; a film larger than the budget alone runs alone.
RAIOX_WORKER_DECODE_MEMORY_MB = env_int("RAIOX_WORKER_DECODE_MEMORY_MB", 512)
# Channels-last memory layout for the image batch and the patch convolution.
RAIOX_CLIP_CHANNELS_LAST = env_bool("RAIOX_CLIP_CHANNELS_LAST", False)
# Development and tests only: run the same architecture with untrained weights when the real
# ones cannot be had. Production refuses (checked in raiox.checks and by the worker).
RAIOX_ALLOW_UNTRAINED_MODEL = env_bool("RAIOX_ALLOW_UNTRAINED_MODEL", False)
# Candidates an answer lists by default (and the calibrated probability's softmax spans).
RAIOX_TOP_K = env_int("RAIOX_TOP_K", 3)
# The scheduled retraining (issue 21, matching.training.retrain_if_due): off at 0; otherwise
# `ensure_schedules` adds a daily job that runs train_matcher once this many confirmed cases were
# added since the last run (evaluated, never activated: staff activate from the admin's report),
# for at most RAIOX_AUTO_RETRAIN_MAX_MINUTES a run.
RAIOX_AUTO_RETRAIN_MIN_NEW_CASES = env_int("RAIOX_AUTO_RETRAIN_MIN_NEW_CASES", 0)
RAIOX_AUTO_RETRAIN_MAX_MINUTES = env_int("RAIOX_AUTO_RETRAIN_MAX_MINUTES", 20)
# Below this similarity (0-1) the answer is "no convincing match".
RAIOX_MIN_SIMILARITY = env_float("RAIOX_MIN_SIMILARITY", 0.75)
# The similarity labels the result page used before calibration (similarity 0-1, margin to the next
# candidate): measured by evaluate_matching as the baseline of the calibrated probability
# (matching.calibration), which is what the page shows now. MEDIUM_MARGIN is also the "tie" of the
# look-alike warning.
RAIOX_CONFIDENCE_HIGH_SIMILARITY = env_float("RAIOX_CONFIDENCE_HIGH_SIMILARITY", 0.90)
RAIOX_CONFIDENCE_HIGH_MARGIN = env_float("RAIOX_CONFIDENCE_HIGH_MARGIN", 0.03)
RAIOX_CONFIDENCE_MEDIUM_SIMILARITY = env_float("RAIOX_CONFIDENCE_MEDIUM_SIMILARITY", 0.82)
RAIOX_CONFIDENCE_MEDIUM_MARGIN = env_float("RAIOX_CONFIDENCE_MEDIUM_MARGIN", 0.01)

# --- How long intake waits for the worker -----------------------------------------------------

# How long POST /upload waits for the worker before answering 202.
RAIOX_UPLOAD_WAIT_SECONDS = env_float("RAIOX_UPLOAD_WAIT_SECONDS", 3.0)
# ...and does not wait at all (202 at once) when this many tasks wait for a worker, or when the
# oldest waiting task has waited longer than RAIOX_UPLOAD_WAIT_SECONDS (no worker is taking them).
RAIOX_UPLOAD_BUSY_QUEUE_DEPTH = env_int("RAIOX_UPLOAD_BUSY_QUEUE_DEPTH", 4)

# --- Abuse limits (kernel.http; counted in the shared cache, raiox.settings.security) ---------

# Per client address (see RAIOX_TRUSTED_PROXY_COUNT); over the limit the answer is 429 with
# Retry-After. Rates read "N/period": "30/10m" is 30 per 10 minutes; "off": none.
RAIOX_RATE_LIMITS = {
    # Anonymous intake: POST /upload, the upload page, crop & re-match, /webhook and /jotform
    # without a configured-and-matching token.
    "intake": env_rate("RAIOX_RATE_LIMIT_INTAKE", "30/10m"),
    # /webhook and /jotform with the right token: Jotform posts every dentist's form from a few
    # addresses of its own, so only a runaway sender should meet this one.
    "machine": env_rate("RAIOX_RATE_LIMIT_MACHINE", "600/m"),
    # Feedback and refine on the result page.
    "actions": env_rate("RAIOX_RATE_LIMIT_ACTIONS", "60/10m"),
}
# API endpoints that take images (POST /api/match/, reference image upload), per client: DRF's
# ScopedRateThrottle scope "images" (raiox.settings.api).
RAIOX_API_IMAGE_RATE = env("RAIOX_API_IMAGE_RATE", "60/minute")

# --- The Jotform thank-you page ---------------------------------------------------------------

# Jotform's thank-you redirect opens a result page only for a submission received this recently.
RAIOX_THANKYOU_WINDOW_SECONDS = env_int("RAIOX_THANKYOU_WINDOW_SECONDS", 900)
RAIOX_THANKYOU_RATE_LIMIT = env_int("RAIOX_THANKYOU_RATE_LIMIT", 60)  # lookups per address...
RAIOX_THANKYOU_RATE_WINDOW_SECONDS = env_int("RAIOX_THANKYOU_RATE_WINDOW_SECONDS", 600)  # ...per this many seconds
# The thank-you page refreshes while Jotform's webhook has not arrived, for this long at most.
RAIOX_THANKYOU_PENDING_SECONDS = env_int("RAIOX_THANKYOU_PENDING_SECONDS", 120)

# --- Result e-mails and retention -------------------------------------------------------------

# Result e-mails per recipient address in any 24 hours; beyond it the e-mail is not sent (the
# submission records why). Anyone can type any address into the upload form: without a cap the
# site would mail a stranger's inbox as often as someone cares to submit. 0: no result e-mails.
RAIOX_RESULT_EMAILS_PER_DAY = env_int("RAIOX_RESULT_EMAILS_PER_DAY", 20)
# LGPD: submissions (patient, dentist, X-ray, crops), queue task rows older than this many days are
# deleted every night; confirmed reference images stay (pixels only). See README "Privacidade".
RAIOX_RETENTION_DAYS = env_int("RAIOX_RETENTION_DAYS", 365)
