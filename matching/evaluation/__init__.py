"""How well the system identifies implants, measured the way a clinic would: the real search, the
running model, a labelled set (a folder ``<implant-slug>/*.png``, the staff-confirmed cases, or
leave-one-out over the reference images).

Per query we keep the true implant, the ranked candidates with their similarities and the time
taken; every figure of the report (top-k, per manufacturer, confusions, confidence labels, the
"no convincing match" cut-off, latency, calibration and suggested thresholds) is computed from
that list.

Two ways of telling the dentist how sure we are are measured side by side: the similarity labels
the result page used before issue 21 (``similarity_label``: fixed ``RAIOX_CONFIDENCE_*`` thresholds
on the raw similarity and its margin), and the calibrated probability (``matching.calibration``) of
the model's active calibration, the one the page shows now (``calibrated``). ``--fit-calibration``
fits a new one on the set (``observations``).

The modules, in the order a run goes through them:

- ``datasets``: the labelled sets (``LabelledItem``: a folder, generated films with ``truth.json``,
  the confirmed cases, leave-one-out);
- ``searchers``: running the queries (``DatabaseSearch`` through pgvector, ``MemorySearch`` exact
  over a second model's catalogue, ``run_queries``);
- ``figures``: every figure of a run (``summarise``, ``suggest_thresholds``, ``observations`` for the
  calibration fit);
- ``summary``: what a run gives, typed (``Summary`` and its parts; ``as_json``/``from_json`` for
  report.json and the stored ``EvaluationReport.summary``);
- ``services``: the write (``evaluation_report_create``).
"""
