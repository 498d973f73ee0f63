"""Tests of the harvester job (container/)."""
