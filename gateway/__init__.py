"""Monosign Gateway: a reverse proxy that adds a Monosign second factor to Outlook on the web."""

__version__ = "0.1.0"
