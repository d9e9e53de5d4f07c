"""First factors of the `portal` profile: who the user is, before Monosign's second factor.

Backends (each `FirstFactor`: `await authenticate(username, password) -> Identity | Failure`):

- `file` (file_backend.py): a YAML users file with argon2id hashes, re-read when it changes.
- `ldap` (ldap_backend.py): Active Directory or OpenLDAP (bind as the user; groups; `diagnose()`).
- `monosign` (monosign_only.py): no password, the typed name only; needs push number matching.

docs/identity.md is the operators' guide. Modules import their backend's library only when used
(ldap3 is imported by ldap_backend, argon2 by the users file), so importing this package stays light.
"""

from gateway.identity.base import Failure, FailureKind, FirstFactor, Identity, Outcome
from gateway.identity.usernames import InvalidUserName, validate_username

__all__ = ["Failure", "FailureKind", "FirstFactor", "Identity", "InvalidUserName", "Outcome", "validate_username"]
