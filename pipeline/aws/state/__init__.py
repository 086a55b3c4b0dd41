"""Deployment state in one DynamoDB table per environment: ``table`` (key layout, item
codecs, creation), ``store`` (``DynamoStateStore``), ``lock`` (``DynamoLockManager``, the
lease of a service in an environment) and ``permissions``."""
