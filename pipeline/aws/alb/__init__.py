"""The Application Load Balancer: ``rules`` (a service's listener rule and its weighted
forward), ``router`` (``AlbListenerRouter``, the TrafficRouter port), ``metrics``
(``CloudWatchMetrics``: the target groups' CloudWatch metrics, the Metrics port) and
``permissions``."""
