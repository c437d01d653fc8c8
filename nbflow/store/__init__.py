"""The run store: SQLite (WAL) at `.nbflow/nbflow.db`, its schema, and every query nbflow makes."""

from nbflow.store.db import DB_NAME, Store, open_store

__all__ = ["DB_NAME", "Store", "open_store"]
