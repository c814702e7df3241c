"""A restricted unpickler for dataset pickles (SPEC section 9).

Pickles can run arbitrary code when loaded: ``pickle.load`` calls whatever callable the file
names. Dataset files such as 3DPW's ``sequenceFiles/*/*.pkl`` only hold builtin containers and
numpy arrays, so :func:`load_pickle` admits exactly the numpy reconstruction helpers (containers
and numbers need no global) and refuses every other global with :class:`RefusedPickleClass`.
No admitted callable allocates more than the file holds: ``_reconstruct`` is only given the
empty shape pickles use (the data then comes from the file), and builtin constructors such as
``bytearray(10**12)`` or ``list(range(...))`` are not admitted at all.

Example:
    >>> import io, pickle, numpy as np
    >>> blob = pickle.dumps({"x": np.arange(3)}, protocol=2)
    >>> loads_restricted(blob)["x"].tolist()
    [0, 1, 2]
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RefusedPickleClass", "RestrictedUnpickler", "ALLOWED_GLOBALS", "load_pickle", "loads_restricted"]

# The globals a numpy-array pickle names (ndarray.__reduce__ / dtype.__reduce__ / scalar
# pickling). numpy 2 moved numpy.core to numpy._core; both spellings occur in files.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, "latin1").
    ("_codecs", "encode"),
}
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(_NUMPY_GLOBALS)
"""Every ``(module, name)`` pair :class:`RestrictedUnpickler` resolves."""

_NUMPY_2 = int(np.__version__.split(".")[0]) >= 2


class RefusedPickleClass(pickle.UnpicklingError, ValueError):
    """A pickle named a global outside :data:`ALLOWED_GLOBALS` (also a ``ValueError``)."""


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise RefusedPickleClass(
                f"refusing to load global {module}.{name}: dataset pickles may only reference "
                "numpy arrays, dtypes and scalars (containers need no global)"
            )
        # Resolve numpy's module under whichever name this numpy version uses, without the
        # deprecation shim numpy 2 keeps for numpy.core.
        if _NUMPY_2 and module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core") :]
        elif not _NUMPY_2 and module.startswith("numpy._core"):
            module = "numpy.core" + module[len("numpy._core") :]
        found = super().find_class(module, name)
        return _empty_reconstruct(found) if name == "_reconstruct" else found


def _empty_reconstruct(reconstruct: Any) -> Any:
    """numpy's ``_reconstruct`` for the empty shape that ``ndarray.__reduce__`` writes, and no other."""

    def bounded(subtype: Any, shape: Any, dtype: Any) -> Any:
        if subtype is not np.ndarray or not isinstance(shape, tuple) or int(np.prod(shape, dtype=np.float64)) > 1:
            raise pickle.UnpicklingError(f"array reconstruction with shape {shape!r}; expected numpy's own (0,)")
        return reconstruct(subtype, shape, dtype)

    return bounded


def loads_restricted(data: bytes, encoding: str = "latin1") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    ``encoding="latin1"`` reads Python 2 pickles (their numpy buffers are ``str``) correctly.
    """
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


def load_pickle(path: str | Path, encoding: str = "latin1") -> Any:
    """Load the pickle at ``path`` with :class:`RestrictedUnpickler`.

    Raises ``ValueError`` naming the file for refused globals (:class:`RefusedPickleClass`),
    truncated or corrupt files.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, encoding=encoding).load()
    except RefusedPickleClass as err:
        raise RefusedPickleClass(f"{path}: {err}") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from None
    except (MemoryError, RecursionError, OverflowError) as err:
        raise ValueError(f"{path}: not a readable pickle ({type(err).__name__}); expected a dataset file") from None
