"""Tests of the two Lambdas and their pure cores (handlers/)."""
