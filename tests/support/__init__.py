"""Helpers the tests share (broker faults, stability checks, the reference model); not tests."""
