"""``python -m halohand.apps.cli``: the ``halohand`` command (for torchrun and subprocesses)."""

from halohand.apps.cli import main

main()
