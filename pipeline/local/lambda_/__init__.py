"""The local Lambda runtime: functions, versions and aliases served by worker processes.

- ``runtime`` / ``server``: the runtime (inside the plane) and a thread that hosts one for tests;
- ``control_api`` / ``control_client``: its HTTP control API (a server) and the client of it;
- ``worker`` / ``worker_main``: one execution environment, and the program that runs inside it;
- ``pool``, ``function_registry``, ``model``, ``http_events``, ``metrics``, ``package``;
- ``adapters``: the core's ports (compute, alias router, metrics) over the control API.
"""
