"""The test suite: it mirrors the source folders; no test touches the network."""
