"""Persistence: SQLModel tables, the async engine and the repositories."""
