"""Deployment reports people read: an HTML page with inline SVG charts (``page``, ``svg``)
from the history, the metrics and the traces (``data``), and the live status view (``watch``)."""
