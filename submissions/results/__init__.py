"""The result read model: every read of a submission's result, for every page and API that shows it.

One module per job, each importing only those above it in this list:

- ``links``: where a result lives (page, status JSON, the API's Location; absolute from SITE_URL)
  and a stored file's URL.
- ``confidence``: what a candidate is labelled — its band, "modelo ainda não calibrado", never
  "alta" among look-alikes or when the image's quality limits the comparison. Pure: no database.
- ``queries``: which matches are shown (``ranked_matches`` / ``top_matches``), "no convincing
  match", "no fixture found", the look-alike groups of the shown candidates, the review request.
- ``answer``: the JSON answer of ``POST /upload`` and ``/api/match/`` (``match_result``, rendered by
  ``submissions.serializers.MatchResultSerializer``) and the e-mail's one-line headline.
- ``page``: the dentist's result page (``submission_result_page``), SVG overlay sizing included.
- ``export``: the staff CSV export of the review list.
- ``email``: the dentist's two e-mails, their text (sent once by ``services/email.py``, which the
  tasks hand the text to).

Used by the pages, the upload/match APIs, the intake answers, the e-mail, the staff API and the
admin. No torch here: web processes import it. Waiting for a result is the queue's business, not
the read model's: ``submissions.intake.form.wait_for_result``.

A candidate's picture (``card_image_url``) is always a catalogue image of its implant, never the
confirmed case the match may have come from: that is another patient's X-ray
(``implants.selectors``). Only the staff admin shows the matched reference image itself.

What the dentist reads of a candidate is its *calibrated probability* and band, stored on the Match
by the worker from the active calibration of the model that answered (``matching.calibration``):
"Probabilidade estimada: 62 %", "Confiança alta / média / baixa". Without a calibration for that
model there is no percentage: the page says the model is not calibrated yet. The raw similarity is
for staff (admin, staff API) and the evaluation, never the dentist's headline.

"No convincing match" is the first candidate's band ``nenhuma`` (the calibration's cut-off); for a
result of a model not calibrated yet it is still read from ``RAIOX_MIN_SIMILARITY`` each time.
"""
