"""The outside senders: Jotform's webhook and the generic POST /webhook, and the hosts their image
URLs may be fetched from."""

from __future__ import annotations

from raiox.settings.base import IS_PRODUCTION
from raiox.settings.env import env, env_bool, env_float, env_list

JOTFORM_WEBHOOK_TOKEN = env("JOTFORM_WEBHOOK_TOKEN")
JOTFORM_FORM_IDS = env_list("JOTFORM_FORM_IDS")
JOTFORM_API_KEY = env("JOTFORM_API_KEY")
JOTFORM_FILE_HOSTS = env_list(
    "JOTFORM_FILE_HOSTS", "www.jotform.com,eu.jotform.com,hipaa.jotform.com,files.jotform.com"
)
JOTFORM_DOWNLOAD_TIMEOUT = env_float("JOTFORM_DOWNLOAD_TIMEOUT", 15.0)
# Form field names (the part after q<N>_) for each intake field; each has its own JOTFORM_FIELD_*
# variable for a renamed form.
JOTFORM_FIELD_MAP = {
    "dentist_name": env("JOTFORM_FIELD_NOME", "nome"),
    "dentist_email": env("JOTFORM_FIELD_EMAIL", "email"),
    "patient": env("JOTFORM_FIELD_PACIENTE", "paciente"),
    "tooth": env("JOTFORM_FIELD_DENTE", "dente"),
    "file": env("JOTFORM_FIELD_FILE", "file"),
}
# Hosts the generic /webhook may fetch an image URL from (none unless configured).
RAIOX_WEBHOOK_FILE_HOSTS = env_list("RAIOX_WEBHOOK_FILE_HOSTS")
# When set, POST /webhook requires it (``Authorization: Bearer <token>`` or ``?token=``).
RAIOX_WEBHOOK_TOKEN = env("RAIOX_WEBHOOK_TOKEN")
# Remote images are fetched over https only; plain http is for a local stand-in server (tests,
# a developer's curl) and is never allowed in production.
RAIOX_ALLOW_HTTP_DOWNLOADS = env_bool("RAIOX_ALLOW_HTTP_DOWNLOADS", False) and not IS_PRODUCTION
