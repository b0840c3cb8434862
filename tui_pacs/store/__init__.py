"""The store: the Peewee index (SQLite or PostgreSQL) and the file archive."""
