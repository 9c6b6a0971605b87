"""Integration tests against real processes on loopback."""
