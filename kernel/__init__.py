"""The bottom layer: what every app needs and nothing app-specific.

Errors (``ApplicationError``), image validation, storing a file with its row, storage keys, safe
downloads. It imports Django and third-party libraries only — never ``raiox``, ``implants``,
``submissions`` or ``matching`` (``tests/test_layers.py`` enforces it).
"""
