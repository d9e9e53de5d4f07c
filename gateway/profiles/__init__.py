"""Profiles: how a kind of site is served (its route classes, their handlers, what it inspects) and how
its users sign in (one package or module per profile)."""
