"""Pulumi ComponentResources of the pipeline: ingestion, processing, notification, alerts."""
