"""Service replicas: real processes started from a release, health-checked and restarted.

- ``replica``: one process and its health checks;
- ``supervisor``: the replica sets of every (environment, service, slot).
"""
