"""Kubernetes resource quantities ("500m", "8Gi", "1e3") as plain numbers.

Pod templates in RayService manifests describe CPU, memory and GPUs with Kubernetes quantity
strings, while Ray wants counts of CPUs and bytes of memory. This module is the one place that
understands the quantity grammar, so the loader (to reject bad values) and the resource
calculation (to read good ones) agree on every value.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_BINARY_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL_SUFFIXES = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>\d+(?:\.\d*)?|\.\d+)"
    r"(?:(?P<exponent>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?"
)

QUANTITY_HINT = "a Kubernetes quantity such as 500m, 2, 1.5, 8Gi, 512Mi or 1e9"

_MEBIBYTE = _BINARY_SUFFIXES["Mi"]
_UNITS_LARGEST_FIRST = sorted(_BINARY_SUFFIXES.items(), key=lambda unit: unit[1], reverse=True)


def parse_quantity(value: object) -> Fraction:
    """Return the exact non-negative amount a quantity denotes ("1500m" -> 3/2)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a quantity: expected a string or a number")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite quantity")
        return _non_negative(Fraction(value), value)
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    amount = Fraction(match["number"]) * _scale(match["exponent"], match["suffix"])
    if match["sign"] == "-":
        amount = -amount
    return _non_negative(amount, value)


def parse_cpu(value: str | float) -> float:
    """CPU count of a quantity: "500m" -> 0.5, "2" -> 2.0."""
    return float(parse_quantity(value))


def parse_memory(value: str | float) -> int:
    """Bytes of a quantity, rounded up to a whole byte: "8Gi" -> 8589934592."""
    return math.ceil(parse_quantity(value))


def format_memory(num_bytes: int) -> str:
    """Short human form of a byte count: the largest binary unit that divides it, else Mi."""
    if num_bytes < 0:
        raise ValueError(f"a memory size cannot be negative, got {num_bytes}")
    if num_bytes == 0:
        return "0"
    for suffix, size in _UNITS_LARGEST_FIRST:
        if num_bytes % size == 0:
            return f"{num_bytes // size}{suffix}"
    if num_bytes >= _MEBIBYTE:
        return f"{round(num_bytes / _MEBIBYTE)}Mi"
    return str(num_bytes)


def _scale(exponent: str | None, suffix: str | None) -> Fraction:
    if exponent is not None:
        return Fraction(10) ** int(exponent[1:])
    if suffix in _BINARY_SUFFIXES:
        return Fraction(_BINARY_SUFFIXES[suffix])
    return _DECIMAL_SUFFIXES[suffix or ""]


def _non_negative(amount: Fraction, original: object) -> Fraction:
    if amount < 0:
        raise ValueError(f"a resource quantity cannot be negative, got {original!r}")
    return amount
