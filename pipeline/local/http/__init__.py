"""The local HTTP router: one listener per environment that splits traffic between slots.

- ``router``: the aiohttp proxy (``EnvironmentRouter``);
- ``rules``: path rules, the weighted slot picker, slot and function names;
- ``counters``: per-slot request counts and latencies over a sliding window.
"""
