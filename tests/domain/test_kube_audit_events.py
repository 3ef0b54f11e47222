"""Audit webhook batches are read one event at a time, each cut to the recorded fields."""

from __future__ import annotations

import json

import pytest

from bot.kube_audit_events import MAX_FIELD_CHARS, MalformedEventList, read_event_list


def _batch(*items: object, **extra: object) -> str:
    return json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", **extra, "items": list(items)})


def test_an_event_keeps_what_is_recorded_and_drops_request_and_response_bodies() -> None:
    event = {
        "auditID": "a1",
        "stage": "ResponseComplete",
        "verb": "create",
        "user": {"username": "alice@example.com", "groups": ["oncall"], "extra": {"x": ["y"]}},
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "payments", "name": "p"},
        "responseStatus": {"code": 201, "metadata": {}},
        "requestObject": {"spec": "x" * 10_000},
        "responseObject": {"spec": "y" * 10_000},
    }
    batch = read_event_list(_batch(event, metadata={"resourceVersion": "1"}))
    assert batch["kind"] == "EventList"
    assert batch["items"] == [
        {
            "auditID": "a1",
            "stage": "ResponseComplete",
            "verb": "create",
            "user": {"username": "alice@example.com", "groups": ["oncall"]},
            "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "payments", "name": "p"},
            "responseStatus": {"code": 201},
        }
    ]


def test_fields_of_the_wrong_shape_are_absent_and_strings_are_capped() -> None:
    (event,) = read_event_list(
        _batch({"user": "alice", "objectRef": ["pods"], "verb": {"a": 1}, "auditID": "x" * 100_000})
    )["items"]
    assert event == {"auditID": "x" * MAX_FIELD_CHARS}


@pytest.mark.parametrize(
    "text",
    ["", "[]", "{", '{"items": {}}', '{"items": [1,]}', '{"items": []} x', '{"items": [' + "[" * 100_000, '{"a" 1}'],
)
def test_a_body_that_is_not_an_event_list_object_is_malformed(text: str) -> None:
    with pytest.raises(MalformedEventList):
        read_event_list(text)
