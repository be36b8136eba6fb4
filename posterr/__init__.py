"""Posterr: a small Twitter-like social backend (Bottle, raw SQL on PostgreSQL, Redis)."""
