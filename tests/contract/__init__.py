"""Tests of the shared contract: names, keys and message validation."""
