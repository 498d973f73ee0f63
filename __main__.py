"""The ARTI4207 pipeline: harvest datos.gov.co into S3 with AWS Batch, then catalogue and score it.

Ingestion (image, bucket, queue, Batch) -> Processing (table, topic, metadata Lambda)
-> Notification (criteria Lambda); Alerts (the topic their alarms and failed jobs notify).
Every setting comes from the stack config (components/config.py).
"""

import pulumi

from components.alerts import Alerts, AlertsArgs
from components.config import ConfigError, PipelineConfig
from components.ingestion import Ingestion, IngestionArgs
from components.notification import Notification, NotificationArgs
from components.processing import Processing, ProcessingArgs

try:
    config = PipelineConfig.from_pulumi()
except ConfigError as error:
    # RunError stops `pulumi up` with the message alone (which names the key), no traceback.
    raise pulumi.RunError(str(error)) from None

alerts = Alerts("alerts", AlertsArgs(config=config))
ingestion = Ingestion("ingestion", IngestionArgs(
    config=config,
    alert_topic_arn=alerts.topic_arn,
    app_token=pulumi.Config().get_secret("portalAppToken"),
))
processing = Processing("processing", ProcessingArgs(
    config=config,
    bucket_name=ingestion.bucket_name,
    bucket_arn=ingestion.bucket_arn,
    queue_arn=ingestion.queue_arn,
))
notification = Notification("notification", NotificationArgs(
    config=config,
    bucket_name=ingestion.bucket_name,
    bucket_arn=ingestion.bucket_arn,
    table_name=processing.table_name,
    table_arn=processing.table_arn,
    topic_arn=processing.topic_arn,
    alert_topic_arn=alerts.topic_arn,
))

pulumi.export("bucket", ingestion.bucket_name)
pulumi.export("queueUrl", ingestion.queue_url)
pulumi.export("deadLetterQueueUrl", ingestion.dead_letter_queue_url)
pulumi.export("criteriaDeadLetterQueueUrl", notification.dead_letter_queue_url)
pulumi.export("topicDeadLetterQueueUrl", notification.topic_dead_letter_queue_url)
pulumi.export("alertTopicArn", alerts.topic_arn)
pulumi.export("tableName", processing.table_name)
pulumi.export("topicArn", processing.topic_arn)
pulumi.export("jobQueueArn", ingestion.job_queue_arn)
pulumi.export("jobDefinitionArn", ingestion.job_definition_arn)
pulumi.export("image", ingestion.image_ref)
pulumi.export("metadataFunctionName", processing.function_name)
pulumi.export("criteriaFunctionName", notification.function_name)
pulumi.export("submitJobCommand", ingestion.submit_job_command)
