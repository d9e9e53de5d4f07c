"""SessionRecord.copy: equal and independent (the session cache hands out copies on every passed request)."""

from __future__ import annotations

from dataclasses import fields

from gateway.sessions.base import SessionRecord, SessionState


def full_record() -> SessionRecord:
    return SessionRecord(
        state=SessionState.COMPLETE, typed_username="CORP\\alice", normalised_usernames=["alice", "corp\\alice"],
        user_id="u-1", user_name="alice", email="alice@corp.example", display_name="Alice Archer",
        upstream_set_cookies=["cadata=x; path=/; HttpOnly"], destination="/owa/?path=/mail", mfa_at=5.0,
        csrf_token="t", push_request_id="p", push_expires_at=9.0, failures=2, cadata_hash="h", client_ip="10.0.0.1",
        version=7,
    )


def test_copy_is_equal_and_independent() -> None:
    record = full_record()
    copied = record.copy()
    assert copied == record
    assert copied.to_dict() == record.to_dict()
    for item in fields(SessionRecord):
        value = getattr(record, item.name)
        if isinstance(value, list | dict | set):
            assert getattr(copied, item.name) is not value, f"{item.name} is shared between copies"
    copied.normalised_usernames.append("x")
    copied.upstream_set_cookies.clear()
    assert record.normalised_usernames == ["alice", "corp\\alice"]
    assert record.upstream_set_cookies == ["cadata=x; path=/; HttpOnly"]
