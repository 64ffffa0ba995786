"""The contracts every stage shares: the record layout, the code domains, release identity and its
manifest, data-directory paths, errors and settings.

This package imports no stage (``sources``, ``transforms``, ``expectations``, ``warehouse``,
``flows``); every stage may import it. ``tests/test_architecture.py`` keeps it that way.
"""
