"""A pytest suite driving the `postern` command and its HTTP API with Python's standard library only.

Run: `python3 -m pytest samples/python` (POSTERN_CMD overrides how postern is started; default `npx postern`).
Postern's own CI runs this file (spec/samples/other-languages.spec.ts).
"""
import json
import os
import re
import shlex
import smtplib
import subprocess
import urllib.error
import urllib.request
from email.message import EmailMessage

import pytest

POSTERN = shlex.split(os.environ.get("POSTERN_CMD", "npx postern"))


@pytest.fixture(scope="session")
def postern():
    """Starts postern with SMTP and HTTP on free ports; yields {"smtp": port, "http": port}; stops it after the session."""
    proc = subprocess.Popen(
        POSTERN + ["--only", "smtp,http", "--smtp-port", "0", "--http-port", "0", "--user", "alice:secret@example.test", "--log-level", "warn"],
        stdout=subprocess.PIPE,
        text=True,
    )
    ports = {}
    for line in proc.stdout:  # ends when postern exits
        m = re.match(r"postern: (\w+) ready on .*:(\d+) ", line)
        if m:
            ports[m.group(1)] = int(m.group(2))
        if {"smtp", "http"} <= ports.keys():
            break
    assert {"smtp", "http"} <= ports.keys(), "postern did not start"
    yield ports
    proc.terminate()
    proc.wait(timeout=10)


def api(postern, method, path, body=None):
    """Calls the HTTP API; returns (status, parsed JSON or None)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"} if data is not None else {}
    req = urllib.request.Request(f"http://127.0.0.1:{postern['http']}/api/v1{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            text = res.read()
            return res.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(autouse=True)
def empty_mailbox(postern):
    assert api(postern, "DELETE", "/messages")[0] == 200
    assert api(postern, "DELETE", "/chaos")[0] == 204


def send(postern, to, subject, bcc=None):
    msg = EmailMessage()
    msg["From"] = "Shop <shop@example.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Thanks for your order.")
    with smtplib.SMTP("127.0.0.1", postern["smtp"], timeout=10) as smtp:
        smtp.send_message(msg, to_addrs=[to] + ([bcc] if bcc else []))


def test_the_app_mail_arrives_with_its_envelope(postern):
    send(postern, "alice@example.test", "Order 42 confirmed", bcc="alice@example.test")
    status, body = api(postern, "GET", "/messages?to=alice@example.test")
    assert status == 200
    assert body["total"] == 1
    m = body["messages"][0]
    assert m["subject"] == "Order 42 confirmed"
    assert m["from"] == {"name": "Shop", "address": "shop@example.test"}
    assert m["envelope"]["mailFrom"] == "shop@example.test"
    status, detail = api(postern, "GET", f"/messages/{m['id']}")
    assert detail["text"].strip() == "Thanks for your order."


def test_a_temporary_failure_is_injected(postern):
    rule = {"rules": [{"protocol": "smtp", "stage": "rcpt", "reply": "451 4.3.0 try later", "times": 1}]}
    assert api(postern, "PUT", "/chaos", rule)[0] == 200
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(postern, "alice@example.test", "first try")
    assert refused.value.recipients["alice@example.test"] == (451, b"4.3.0 try later")
    send(postern, "alice@example.test", "second try")  # the rule fired its one time
    assert [m["subject"] for m in api(postern, "GET", "/messages")[1]["messages"]] == ["second try"]


def test_bad_input_gets_a_clear_400(postern):
    status, body = api(postern, "PUT", "/chaos", {"rules": [{"protocol": "smtp", "stage": "rcpt", "reply": "OK"}]})
    assert status == 400
    assert body["error"].startswith("rules[0].reply: not a smtp refusal")
