"""Tests of the local runner: emulator, Lambda event delivery, the demo end to end."""
