"""Model families, one folder each (``tatumflow/``, ``music_rnn/``, ``melody_vae/``),
listed in :mod:`.registry`; :mod:`.protocol` says what a family provides.

Importing this package loads no family: ``training/`` imports :mod:`.protocol` alone."""
