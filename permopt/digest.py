"""Content hashes: the one way permopt keys caches and signatures by what they hold."""
from __future__ import annotations

import hashlib

import numpy as np


def digest(*parts: str | np.ndarray) -> str:
    """Hex SHA-1 of ``parts`` in order: text as UTF-8, an array as its C-order bytes followed
    by its shape (so a reshaped array hashes differently)."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(np.ascontiguousarray(part).tobytes())
            h.update(str(part.shape).encode())
        else:
            h.update(part.encode())
    return h.hexdigest()
