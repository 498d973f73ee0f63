"""Tests of the Pulumi components, run against mocks (tests/pulumi_mocks.py)."""
