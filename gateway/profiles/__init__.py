"""Profiles: how a kind of site is served (its route classes, their handlers, what it inspects)."""
