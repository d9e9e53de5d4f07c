"""The `portal` profile: the gateway's own sign-in for any web application (docs/sites.md).

- `sites`: each portal site's first-factor backend (gateway.identity), rebuilt when a reload changes it;
- `portal`: what the sign-in pages share (the backends, the form's keys and cookie, the lockout);
- `signin`: `GET`/`POST /_gateway/signin` and `GET /_gateway/signout`; the MFA pages that follow
  are the MFA flow's own (gateway.mfa), for a portal site's sessions as for Exchange's.
"""
