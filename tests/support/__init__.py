"""Helpers shared by the tests: real servers to talk to."""
