"""A service's ``api:`` edge on AWS: an API Gateway REST API (v1) in front of its route.

``spec`` (what the REST API of a service should be, pure), ``rest`` (the calls),
``bootstrap`` (plan and create it), ``keys`` (the ``ApiKeys`` port), ``cache`` (the stage
cache emptied when a deployment moves traffic) and ``permissions`` (the IAM actions).
"""
