"""Errors the library raises for bad input; the CLI turns them into one line and exit 2."""

from __future__ import annotations


class HalohandInputError(ValueError):
    """Bad user input: wrong shape, NaN, wrong units, degenerate skeleton, corrupt file."""


class CorruptFileError(HalohandInputError):
    """A data shard, checkpoint or input file that cannot be read; the message names it."""
