"""Storage on SQLAlchemy 2 (async): SQLite by default, PostgreSQL for production."""
