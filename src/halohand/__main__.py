"""``python -m halohand``: the ``halohand`` command."""

from halohand.apps.cli import main

main()
