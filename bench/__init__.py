"""Benchmarks (`make bench`): each module measures one hot path against a baseline in the same run."""
