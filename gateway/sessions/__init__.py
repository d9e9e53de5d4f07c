"""Sessions: the record, the store interface and its memory and Redis backends (see docs/sessions.md).

Import from the modules themselves (`gateway.sessions.base`, `.factory`, `.store`, ...).
"""
