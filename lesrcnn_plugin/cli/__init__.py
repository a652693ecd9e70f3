"""Command-line tools; each module has ``main(argv=None)`` and a wrapper in ``tools/``."""
