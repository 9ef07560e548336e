"""Byte units and Kubernetes resource quantities."""

from __future__ import annotations

import math
import re

GIB = 1024**3
MIB = 1024**2

_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*$")
_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
}


def parse_quantity(value: object) -> float | None:
    """A Kubernetes quantity ("15Gi", "500m", 8, 8.0) as a number; None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return float(value)
        if not isinstance(value, str) or len(value) > 64:
            return None
        match = _QUANTITY.match(value)
        if not match or match.group(2) not in _SUFFIX:
            return None
        return float(match.group(1)) * _SUFFIX[match.group(2)]
    except OverflowError:  # an integer beyond float range (10**400): no quantity anyone means
        return None


def gib(nbytes: float) -> float:
    return nbytes / GIB


def gi_quantity(gibibytes: float) -> str:
    """A whole number of GiB as a Kubernetes quantity, rounded up so a limit is never smaller."""
    return f"{math.ceil(gibibytes - 1e-9)}Gi"


def fmt_gib(nbytes: float) -> str:
    return f"{nbytes / GIB:.1f} GiB"
