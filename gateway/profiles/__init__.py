"""The profiles: how each kind of site signs users in (docs/sites.md)."""
