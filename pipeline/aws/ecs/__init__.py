"""ECS services in blue and green slots: ``taskdef`` (task definition rendering and
comparison), ``slot`` (what a slot's service, tasks and targets report), ``compute``
(``EcsCompute``, the Compute port), ``bootstrap`` (what a service needs before its first
deployment) and ``permissions`` (the IAM actions of all of them)."""
