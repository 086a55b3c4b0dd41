"""Helpers and fixtures of the AWS adapter tests (imported by test modules, never collected)."""
