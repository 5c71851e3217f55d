"""Reading pickles without running their code.

A pickle names the globals it needs (classes, functions) as ``module.name`` strings and
calls them while it loads, so ``pickle.load`` of a file from elsewhere can run anything.
:class:`RestrictedUnpickler` resolves a global only through an allow-list that the reader of
a format supplies, ``{(module, name): object}``, where the object may be the real one or a
safer stand-in. A global off the list goes to the reader's ``fallback(module, name)`` if it
has one (to build inert stand-ins, say), and is refused otherwise.
:func:`restricted_loads` runs a whole load and turns any failure into one
:class:`~halohand.core.errors.CorruptFileError` that names the file.

Used for the original HALO checkpoint (:mod:`halohand.inference.original`) and MANO model
files (:mod:`halohand.handmodel.mano.loader`), each with its own allow-list.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable, Mapping
from typing import IO, Any

from halohand.core.errors import CorruptFileError

__all__ = ["Allowed", "RestrictedUnpickler", "restricted_loads"]

#: ``(module, name) -> object`` a pickle may name and what it resolves to.
Allowed = Mapping[tuple[str, str], Any]


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals.

    Args:
        file: binary file positioned at the pickle.
        allowed: ``(module, name) -> object``: the globals the format may name.
        fallback: called as ``fallback(module, name)`` for any other global; its result
            stands for the global (it may raise ``pickle.UnpicklingError`` to refuse).
            Without one, such globals are refused.
        persistent_load: resolves persistent ids (e.g. torch's tensor storages); without
            one, a persistent id is refused.
        encoding: how Python 2 ``str`` objects are decoded (``"latin1"`` for numpy arrays
            pickled by Python 2).
    """

    def __init__(
        self,
        file: IO[bytes],
        allowed: Allowed,
        *,
        fallback: Callable[[str, str], Any] | None = None,
        persistent_load: Callable[[Any], Any] | None = None,
        encoding: str = "ASCII",
    ) -> None:
        super().__init__(file, encoding=encoding)
        self._allowed = allowed
        self._fallback = fallback
        self._persistent_load = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._allowed:
            return self._allowed[key]
        if self._fallback is not None:
            return self._fallback(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent_load is None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return self._persistent_load(pid)


def restricted_loads(
    data: bytes,
    allowed: Allowed,
    *,
    path: str | os.PathLike[str],
    what: str,
    fallback: Callable[[str, str], Any] | None = None,
    persistent_load: Callable[[Any], Any] | None = None,
    encoding: str = "ASCII",
) -> Any:
    """Unpickle ``data`` with a :class:`RestrictedUnpickler` (arguments as there).

    Raises:
        CorruptFileError: ``"{path}: cannot read {what} ({reason})"`` for anything that goes
            wrong while loading: a refused global, a truncated or foreign file, a stand-in
            that cannot be built.
    """
    unpickler = RestrictedUnpickler(
        io.BytesIO(data),
        allowed,
        fallback=fallback,
        persistent_load=persistent_load,
        encoding=encoding,
    )
    try:
        return unpickler.load()
    except Exception as exc:  # any failure inside the unpickler means a damaged file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptFileError(f"{path}: cannot read {what} ({reason})") from exc
