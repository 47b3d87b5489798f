"""Numbered SQL migrations (see stores.postgres)."""
