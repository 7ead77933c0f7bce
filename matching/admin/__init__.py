"""The matching admin: Django's autodiscovery imports this package, and importing each module
registers its ModelAdmin — the workers' heartbeats (``worker_state``), the calibrations and their
activation (``calibration``), the stored evaluation reports (``evaluation``) and the training runs
(``training``).
"""

from matching.admin import calibration, evaluation, training, worker_state  # noqa: F401
