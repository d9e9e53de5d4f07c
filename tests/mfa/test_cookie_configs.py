"""The MFA flow's cookies, built by the assembly from the settings (the flow itself never reads them)."""

from __future__ import annotations

from gateway.assembly import device_cookie, session_cookie
from gateway.policy.cookies import RequestCookies
from tests.proxy.support import gateway_settings

SECRET = "cookie-configs-secret-" + "x" * 32
PREVIOUS = "cookie-configs-previous-" + "y" * 32


def test_the_session_cookie_follows_the_public_url_s_scheme() -> None:
    assert session_cookie(gateway_settings("http://127.0.0.1:1")).name == "msgw"
    https = gateway_settings("http://127.0.0.1:1", gateway_public_url="https://mail.example.test")
    assert session_cookie(https).name == "__Host-msgw"
    assert session_cookie(https).domain is None


def test_the_device_cookie_is_keyed_from_the_session_secrets_the_current_one_signing() -> None:
    settings = gateway_settings("http://127.0.0.1:1", gateway_session_secret=SECRET, gateway_mfa_device_days=3)
    rotated = gateway_settings("http://127.0.0.1:1", gateway_session_secret=SECRET,
                               gateway_session_secret_previous=PREVIOUS, gateway_mfa_device_days=3)
    cookie, both = device_cookie(settings), device_cookie(rotated)
    assert (cookie.lifetime, cookie.secure, len(both.keys)) == (3 * 86400, False, 2)
    assert both.keys[0] == cookie.keys[0]  # the current secret signs
    _, issued = cookie.issue("user-1", 1000.0)
    value = RequestCookies([issued.split(";")[0]])
    assert both.read(value, "user-1", 1000.0) is not None
    # The previous secret's cookies are still read while it is listed.
    previous = device_cookie(gateway_settings("http://127.0.0.1:1", gateway_session_secret=PREVIOUS))
    _, older = previous.issue("user-1", 1000.0)
    assert both.read(RequestCookies([older.split(";")[0]]), "user-1", 1000.0) is not None
    assert cookie.read(RequestCookies([older.split(";")[0]]), "user-1", 1000.0) is None


def test_without_a_secret_each_build_has_a_key_of_its_own() -> None:
    settings = gateway_settings("http://127.0.0.1:1")
    assert device_cookie(settings).keys != device_cookie(settings).keys
