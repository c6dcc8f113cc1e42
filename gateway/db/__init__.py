"""The storage layer: SQLAlchemy models, engine, repositories and Alembic migrations."""
