"""Persistence: SQLAlchemy models, the database connection and migrations.
Imports nothing of the rest of the application."""
