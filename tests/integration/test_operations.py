"""What an operator relies on: metrics, JSON logs, request ids, absolute links from the public URL."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from django.core.checks import run_checks
from django.db import transaction
from django.test import Client
from prometheus_client import REGISTRY

from twostep import bootstrap, logs
from twostep.services import audit, notifications, signin
from twostep.services.errors import InvalidCredentials

from ..conftest import ORIGIN, PASSWORD, MemorySession
from .test_api_support import api_fixture, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metrics_on(settings):
    settings.TWOSTEP_METRICS = True
    settings.TWOSTEP_METRICS_TOKEN = ""
    settings.TWOSTEP_METRICS_ALLOW = []
    return settings


# Metrics ------------------------------------------------------------------------------------

def test_sign_ins_are_counted_by_method_and_outcome(metrics_on, member, django_capture_on_commit_callbacks):
    success = sample("twostep_sign_ins_total", method="password", outcome="success")
    failure = sample("twostep_sign_ins_total", method="password", outcome="failure")
    with django_capture_on_commit_callbacks(execute=True):
        signin.password(MemorySession(), "member", PASSWORD, ORIGIN)
        with pytest.raises(InvalidCredentials):
            signin.password(MemorySession(), "member", "wrong", ORIGIN)
    assert sample("twostep_sign_ins_total", method="password", outcome="success") == success + 1
    assert sample("twostep_sign_ins_total", method="password", outcome="failure") == failure + 1


def test_throttled_and_second_factor_failures_are_counted(metrics_on, member, django_capture_on_commit_callbacks):
    throttled = sample("twostep_throttled_attempts_total", step="password")
    wrong_code = sample("twostep_second_factor_failures_total", method="totp", purpose="sign_in")
    code_sign_in_failed = sample("twostep_sign_ins_total", method="totp", outcome="failure")
    with django_capture_on_commit_callbacks(execute=True):
        audit.record(audit.Type.THROTTLED, user=member, origin=ORIGIN, step="password")
        audit.record(audit.Type.SECOND_FACTOR_FAILED, user=member, origin=ORIGIN, method="totp",
                     purpose="sign_in", failures=1)
    assert sample("twostep_throttled_attempts_total", step="password") == throttled + 1
    assert sample("twostep_second_factor_failures_total", method="totp", purpose="sign_in") == wrong_code + 1
    assert sample("twostep_sign_ins_total", method="totp", outcome="failure") == code_sign_in_failed + 1


def test_an_event_rolled_back_is_not_counted(metrics_on, member, django_capture_on_commit_callbacks):
    before = sample("twostep_security_events_total", type="sign_out")
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            audit.record(audit.Type.SIGN_OUT, user=member, actor=member, origin=ORIGIN)
            raise RuntimeError("the action failed after recording")
    assert sample("twostep_security_events_total", type="sign_out") == before


def test_nothing_is_counted_while_metrics_are_off(settings, member, django_capture_on_commit_callbacks):
    settings.TWOSTEP_METRICS = False
    before = sample("twostep_security_events_total", type="sign_out")
    with django_capture_on_commit_callbacks(execute=True):
        audit.record(audit.Type.SIGN_OUT, user=member, actor=member, origin=ORIGIN)
    assert sample("twostep_security_events_total", type="sign_out") == before


def test_metrics_page_is_not_there_when_off(client, settings):
    settings.TWOSTEP_METRICS = False
    assert client.get("/metrics").status_code == 404


def test_metrics_page_serves_the_exposition_format(client, metrics_on, member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        signin.password(MemorySession(), "member", PASSWORD, ORIGIN)
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert "# TYPE twostep_sign_ins_total counter" in text
    assert re.search(r'^twostep_sign_ins_total\{method="password",outcome="success"\} [1-9]', text, re.M)
    assert "# TYPE twostep_throttled_attempts_total counter" in text


def test_metrics_need_the_bearer_token_when_one_is_set(client, metrics_on):
    metrics_on.TWOSTEP_METRICS_TOKEN = "s3cret-token"
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_metrics_answer_only_allowed_addresses(metrics_on):
    metrics_on.TWOSTEP_METRICS_ALLOW = ["10.0.0.0/8", "192.0.2.7"]
    assert Client(REMOTE_ADDR="192.0.2.8").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="192.0.2.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200


def test_queue_figures_appear_when_the_notifications_service_offers_them(client, metrics_on, monkeypatch):
    monkeypatch.delattr(notifications, "queue_depth", raising=False)
    monkeypatch.delattr(notifications, "failed_count", raising=False)
    assert "twostep_mail_queue_depth" not in client.get("/metrics").content.decode()
    monkeypatch.setattr(notifications, "queue_depth", lambda: 7, raising=False)
    monkeypatch.setattr(notifications, "failed_count", lambda: 2, raising=False)
    text = client.get("/metrics").content.decode()
    assert re.search(r"^twostep_mail_queue_depth 7\.0$", text, re.M)
    assert re.search(r"^twostep_mail_failed 2\.0$", text, re.M)


def test_checks_refuse_a_bad_allow_list_and_warn_about_open_metrics(metrics_on):
    ids = {problem.id for problem in run_checks()}
    assert "twostep.W003" in ids
    metrics_on.TWOSTEP_METRICS_ALLOW = ["not-an-address"]
    assert "twostep.E004" in {problem.id for problem in run_checks()}


def test_the_shipped_templates_start_without_a_warning_about_tag_libraries():
    # TEMPLATES puts twostep's translate and static tags under Django's names on purpose;
    # `twostep serve` printed Django's templates.W003 for both at every start.
    warnings = bootstrap.system_check()  # what `twostep serve` prints
    assert not [warning for warning in warnings if "template tag modules" in warning], warnings


def test_another_module_under_a_taken_library_name_is_still_reported(settings):
    engine = {**settings.TEMPLATES[0], "OPTIONS": {**settings.TEMPLATES[0]["OPTIONS"]}}
    engine["OPTIONS"]["libraries"] = {**engine["OPTIONS"]["libraries"], "tz": "django.templatetags.l10n"}
    settings.TEMPLATES = [engine]
    reported = [problem for problem in run_checks() if problem.id == "twostep.W004"]
    assert [problem.msg for problem in reported] == [
        "'tz' is used for multiple template tag modules: "
        "'django.templatetags.l10n', 'django.templatetags.tz'"]


# Logs and request ids -----------------------------------------------------------------------

def test_every_response_carries_a_request_id(client):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{16}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_request_id_is_taken_from_a_trusted_proxy_only(settings):
    settings.TWOSTEP_TRUSTED_PROXIES = ["192.0.2.1"]
    proxied = Client(REMOTE_ADDR="192.0.2.1").get("/healthz", headers={"X-Request-ID": "edge-42"})
    assert proxied["X-Request-ID"] == "edge-42"
    stranger = Client(REMOTE_ADDR="192.0.2.9").get("/healthz", headers={"X-Request-ID": "edge-42"})
    assert stranger["X-Request-ID"] != "edge-42"
    odd = Client(REMOTE_ADDR="192.0.2.1").get("/healthz", headers={"X-Request-ID": 'x" level="ERROR'})
    assert odd["X-Request-ID"] != 'x" level="ERROR'


def test_json_log_lines_name_the_request(client, member, settings):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("twostep.audit")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        response = client.post("/login", {"login": "member", "password": "wrong"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "the failed sign-in is logged"
    line = lines[-1]
    assert {"time", "level", "logger", "message", "request_id", "path"} <= set(line)
    assert line["level"] == "INFO" and line["logger"] == "twostep.audit"
    assert line["request_id"] == response["X-Request-ID"] and line["path"] == "/login"
    assert "sign_in_failed" in line["message"]


def test_json_lines_carry_the_traceback_as_one_field():
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        record = logging.LogRecord("twostep.web", logging.ERROR, __file__, 1, "failed: %s", ("x",),
                                   exc_info=__import__("sys").exc_info())
    text = logs.JsonFormatter().format(record)
    assert "\n" not in text
    entry = json.loads(text)
    assert entry["message"] == "failed: x" and "ValueError: broken" in entry["exception"]


def test_log_format_json_configures_the_json_formatter():
    config = logs.logging_config("json", "info")
    assert config["formatters"]["main"] == {"()": "twostep.logs.JsonFormatter"}
    assert config["root"]["level"] == "INFO"


# Absolute links -----------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("transport", ["web", "api"])
def test_reset_link_comes_from_the_public_url_not_the_host_header(transport, member, settings, mailoutbox,
                                                                  make_api):
    settings.TWOSTEP_PUBLIC_URL = "https://sso.acme.example"
    hostile = {"HTTP_HOST": "127.0.0.1:6666"}  # an allowed host name with the attacker's port
    if transport == "web":
        Client().post("/password-reset", {"login": "member"}, **hostile)
    else:
        api = make_api()
        api.csrf_token()
        api.post("/auth/password-reset", {"login": "member"}, **hostile)
    assert len(mailoutbox) == 1
    links = re.findall(r"https?://[^\s\"<]+", mailoutbox[0].body)
    assert links and all(link.startswith("https://sso.acme.example/password-reset/") for link in links)
    assert "6666" not in mailoutbox[0].body and "6666" not in mailoutbox[0].alternatives[0][0]


def test_checks_refuse_a_public_url_that_is_not_an_address(settings):
    settings.TWOSTEP_PUBLIC_URL = "sso.acme.example"
    assert "twostep.E005" in {problem.id for problem in run_checks()}
    settings.TWOSTEP_PUBLIC_URL = "https://sso.acme.example"
    assert "twostep.E005" not in {problem.id for problem in run_checks()}
