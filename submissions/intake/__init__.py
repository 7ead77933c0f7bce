"""Intake adapters: each turns one kind of request (Jotform's webhook, the generic webhook) into an
``IntakeRecord`` for ``submissions.services.submission_create``.

- ``common``: the checks every source shares (text fields, e-mail, tooth, remote URLs);
- ``jotform``: Jotform's real webhook shape and the old plain form, both on ``POST /jotform``;
- ``webhook``: the generic ``POST /webhook`` (JSON or multipart) and its documented schema;
- ``views``: the thin HTTP views for both.
"""
