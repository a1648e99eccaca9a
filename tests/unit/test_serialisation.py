"""Serialising stored data never raises on odd text (issue 11): lone surrogates become U+FFFD
in JSON we write (webhooks, logs, error bodies, upstream requests) instead of crashing."""

from __future__ import annotations

import logging

import orjson
import pytest

from beatra import jsonsafe
from beatra.logs import JsonFormatter


def test_dumps_replaces_lone_surrogates_in_keys_values_and_defaults():
    value = {"a\ud800": ["x\udc00y", ("\udfff",)], "n": 1, "ok": "plain é"}
    out = orjson.loads(jsonsafe.dumps(value))
    assert out == {"a\ufffd": ["x\ufffdy", ["\ufffd"]], "n": 1, "ok": "plain é"}
    assert orjson.loads(jsonsafe.dumps({"o": object()}, default=lambda _: "\udc00")) == {
        "o": "\ufffd"}


def test_dumps_still_refuses_what_is_not_json():
    with pytest.raises(orjson.JSONEncodeError):
        jsonsafe.dumps({"o": object()})


def test_a_log_line_with_a_lone_surrogate_is_still_one_json_object():
    record = logging.LogRecord("beatra.test", logging.WARNING, __file__, 1,
                               "model %s", ("\ud800x",), None)
    record.fields = {"model": "\ud800x"}
    line = JsonFormatter().format(record)
    entry = orjson.loads(line)
    assert entry["msg"] == "model \ufffdx" and entry["model"] == "\ufffdx"
