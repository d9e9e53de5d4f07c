"""The `ldap` first factor's settings: the model lives in gateway.config.ldap (a portal site's
`ldap:` key in the configuration file); imported from here as before."""

from gateway.config.ldap import LdapConfig

__all__ = ["LdapConfig"]
