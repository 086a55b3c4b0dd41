"""Terminal rendering shared by the CLI and the demo: consoles, the event sink for people,
progress lines, status and history tables, and the one rendering of a ``PipelineError``."""
