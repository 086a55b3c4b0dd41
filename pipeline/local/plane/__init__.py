"""The plane: the one local process that hosts every environment's router and replicas.

- ``daemon``: the plane process's main program (``python -m pipeline.local.plane.daemon``);
- ``lifecycle``: find, start and stop that process from the CLI, tests and adapters;
- ``environments``: the live state inside it (routers, supervisor, counters, Lambda);
- ``control_api`` / ``control_client``: its HTTP control API and the client that calls it.
"""
