"""Runs the pipeline on one machine: the portal server, the AWS emulator, the Lambda event delivery, the demo."""
