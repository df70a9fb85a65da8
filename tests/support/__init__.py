"""Test-only support code: the reference model of the billing rules."""
