"""Every pipeline run observed: its actions and waits as spans of a trace, its events as notifications.

The engine reports a run through the ``RunObserver`` port (``pipeline.core.ports``); this
package implements it with OpenTelemetry (``spans.RunTracer``, set up by
``setup.run_tracer``) and fans one run out to several observers (``fanout.Observers``).
Notifications are in ``pipeline.notify``.
"""
