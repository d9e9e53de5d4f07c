"""Profiles: how a site signs users in and what its upstream gets (one package per profile)."""
