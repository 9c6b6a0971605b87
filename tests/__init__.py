"""Test suite package, so tests can share tests.helpers."""
