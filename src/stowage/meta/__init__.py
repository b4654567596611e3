"""Metadata backends: SQLAlchemy Core over SQLite (default) or PostgreSQL."""
