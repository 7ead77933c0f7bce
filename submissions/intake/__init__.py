"""Intake: every route that takes an X-ray is a small adapter here that turns its request into one
``IntakeRecord`` for ``submissions.services.submission_create``, through one field specification
(``submissions.fields``, below the services: text with control/bidi characters refused, length
limits from the model's columns, e-mail, the FDI tooth rule, file-name sanitising, the size cap, and
the mapping of a route's answers to the record, ``intake_record``).

- ``fields``: the wire mapping — the old form's names (``FORM_NAMES``), a route's answers under the
  spec's names (``answers_from``), the multipart file (``read_file``), errors renamed to the
  client's fields (``client_names``);
- ``form``: the old form's shape (``nome``, ``email``, ``paciente``, ``dente``, ``file``), used by
  the upload page (``intake_from_form``, through ``submissions/forms.py``), ``POST /upload`` and
  ``POST /api/match/`` (``submit_and_wait``) and the old plain form on ``POST /jotform``;
- ``jotform``: Jotform's real webhook shape (rawRequest) and the old plain form, on ``POST /jotform``;
- ``webhook``: the generic ``POST /webhook`` (JSON or multipart) and its documented schema;
- ``crop``: crop & re-match (a region of a stored X-ray, the original's answers);
- ``views``: the thin HTTP views of ``/jotform`` and ``/webhook``.

Remote image URLs are checked with ``kernel.downloads`` (the worker downloads with it too).
"""
