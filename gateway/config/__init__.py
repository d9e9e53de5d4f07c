"""The gateway's configuration file (`GATEWAY_CONFIG_FILE`): sites, profiles, rules.

Without a file, :func:`sites_from_settings` describes the environment's one Exchange site.
"""

from gateway.config.environment import ENVIRONMENT_SITE, sites_from_settings
from gateway.config.loader import ConfigError, ConfigProblem, load_config, parse_config
from gateway.config.model import Action, GatewayConfig, Profile, Rule, SessionGroup, Site, TlsFiles

__all__ = [
    "ENVIRONMENT_SITE",
    "Action",
    "ConfigError",
    "ConfigProblem",
    "GatewayConfig",
    "Profile",
    "Rule",
    "SessionGroup",
    "Site",
    "TlsFiles",
    "load_config",
    "parse_config",
    "sites_from_settings",
]
