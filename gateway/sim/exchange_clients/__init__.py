"""The OWA simulator's non-browser side: EWS, MAPI, OAB, Autodiscover, Outlook Anywhere (RPC over
HTTP), ActiveSync and PowerShell, each behind the authentication Exchange gives it.

Served from the OWA simulator's catch-all route (`routes.Page.EXCHANGE_CLIENT`, handled by
`endpoints.handle`); `endpoints.install` adds the state to the simulator's application. The
package's `__init__` imports nothing, so the OWA simulator's config can import `config` from here.
"""
