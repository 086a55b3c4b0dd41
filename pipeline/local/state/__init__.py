"""The embedded state store and lock manager (SQLite, WAL mode)."""
