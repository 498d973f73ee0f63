"""The harvester Batch job: datos.gov.co datasets streamed page by page into S3 and announced on SQS."""
