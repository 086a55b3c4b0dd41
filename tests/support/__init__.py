"""Test support shared by every tier: the fake GitHub API."""
