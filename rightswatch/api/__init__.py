"""The HTTP API and the review pages (FastAPI): `create_app(settings)` builds the application."""

from rightswatch.api.app import create_app

__all__ = ["create_app"]
