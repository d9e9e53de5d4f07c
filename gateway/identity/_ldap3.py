"""ldap3 for the backend: the one import of it lives in gateway.policy._ldap3 (the configuration's
filter check needs it too, and gateway.config may not import gateway.identity)."""

from gateway.policy._ldap3 import Tls, check_filter_syntax, ldap3, ldap_errors

__all__ = ["Tls", "check_filter_syntax", "ldap3", "ldap_errors"]
