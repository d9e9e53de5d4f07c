"""The `exchange` profile: Exchange's forms login observed and its session held back until the
second factor (login, logoff, guard, public, cookie_rules, identity, password_change), and its
non-browser client classes (client_routes); `profile` is what the pipeline and the assembly use."""

from gateway.profiles.exchange.profile import (
    ExchangeProfile,
    exchange_mfa_routes,
    exchange_routes,
    redirect_to_owa,
    refuse_without_mfa,
)

__all__ = ["ExchangeProfile", "exchange_mfa_routes", "exchange_routes", "redirect_to_owa", "refuse_without_mfa"]
