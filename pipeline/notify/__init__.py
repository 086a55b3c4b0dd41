"""Deployment notifications: events of a run (started, paused for approval, rolled back,
succeeded, promoted, failed) sent to a Slack-compatible webhook and/or an SNS topic.

``events.Notifier`` is a ``RunObserver``: it sees the run through the same port as the
trace. Channels are ``webhook.Webhook`` (httpx, short timeouts, retried with tenacity) and
``pipeline.aws.sns.SnsTopic``. A notification that cannot be delivered never fails the
deployment: it is logged as a warning, shown as a note and recorded in the history.
"""
