"""The pt-BR messages that more than one module gives a dentist or a staff member: one wording in
one place. (A message said in one place only stays next to its rule.) Imports nothing, so any
layer of ``submissions`` and ``matching`` may read it."""

# The submission's stored X-ray is gone from storage: no retry brings it back.
MISSING_IMAGE = "A imagem desta radiografia não foi encontrada. Envie-a novamente."
# An intake sent without its X-ray.
SEND_THE_IMAGE = "Envie a imagem da radiografia."
# Staff confirmation, or a request for a specialist's review, of a submission without a stored image.
NO_STORED_IMAGE = "Este envio não tem imagem armazenada."
