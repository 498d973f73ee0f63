"""The two Lambdas (metadata, criteria) and their pure cores (object digest, CSV profile, quality scores)."""
