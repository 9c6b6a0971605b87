"""Kubernetes quantity parsing and memory formatting."""

from __future__ import annotations

import pytest

from rayservice.spec.quantities import format_memory, parse_cpu, parse_memory, parse_quantity

GIB = 2**30


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("500m", 0.5), ("2", 2.0), ("1.5", 1.5), ("250m", 0.25), ("0", 0.0), ("1e1", 10.0)],
)
def test_parse_cpu_reads_cores_and_millicores(text: str, cpus: float) -> None:
    assert parse_cpu(text) == cpus


def test_parse_cpu_accepts_yaml_numbers() -> None:
    assert parse_cpu(3) == 3.0
    assert parse_cpu(0.5) == 0.5


@pytest.mark.parametrize(
    ("text", "num_bytes"),
    [
        ("1Ki", 2**10),
        ("512Mi", 512 * 2**20),
        ("8Gi", 8 * GIB),
        ("2Ti", 2 * 2**40),
        ("1Pi", 2**50),
        ("1k", 10**3),
        ("3M", 3 * 10**6),
        ("2G", 2 * 10**9),
        ("1T", 10**12),
        ("1P", 10**15),
        ("1048576", 2**20),
        ("1e3", 1000),
        ("1.5Gi", 3 * GIB // 2),
    ],
)
def test_parse_memory_reads_binary_and_decimal_suffixes(text: str, num_bytes: int) -> None:
    assert parse_memory(text) == num_bytes


def test_parse_memory_accepts_a_plain_integer() -> None:
    assert parse_memory(4096) == 4096


def test_parse_memory_rounds_a_fraction_of_a_byte_up() -> None:
    assert parse_memory("1500m") == 2


def test_parse_quantity_is_exact() -> None:
    assert parse_quantity("100m") * 10 == 1


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_memory(" 1Gi ") == GIB


@pytest.mark.parametrize("garbage", ["", "abc", "1.2.3", "Gi", "1 Gi", "5Zi", "2 cpus", "0x10"])
def test_garbage_is_rejected_naming_the_value(garbage: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity") as caught:
        parse_cpu(garbage)
    assert repr(garbage) in str(caught.value)


@pytest.mark.parametrize("value", [True, None, [1], {"cpu": 1}, float("inf"), float("nan")])
def test_values_that_are_not_quantities_are_rejected(value: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(value)


def test_negative_quantities_are_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_memory("-1Gi")


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (6 * GIB, "6Gi"),
        (1536 * 2**20, "1536Mi"),
        (2**40, "1Ti"),
        (3 * 2**50, "3Pi"),
        (1024, "1Ki"),
        (0, "0"),
    ],
)
def test_format_memory_uses_the_largest_unit_that_divides_evenly(num_bytes: int, text: str) -> None:
    assert format_memory(num_bytes) == text


def test_format_memory_rounds_to_mebibytes_when_no_unit_divides() -> None:
    assert format_memory(1_500_000_000) == "1431Mi"


def test_format_memory_keeps_small_odd_sizes_in_bytes() -> None:
    assert format_memory(1000) == "1000"


def test_format_memory_output_parses_back_to_the_same_size() -> None:
    assert parse_memory(format_memory(40 * 2**20)) == 40 * 2**20


def test_format_memory_rejects_negative_sizes() -> None:
    with pytest.raises(ValueError):
        format_memory(-1)
