"""A small shop: customers and their orders (an ordinary SQLAlchemy 2.0 application)."""
