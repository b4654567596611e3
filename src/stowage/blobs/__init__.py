"""Blob backends: where object bytes live."""
