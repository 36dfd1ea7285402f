"""The e-mail keys: `[connectors.email]`, `people.X.email`, and what they mean for the guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_config
from watcher.app import build_connectors
from watcher.core.config import ConfigError, load
from watcher.core.destinations import url_keys, watched

SECTION = """
[connectors.email]
host = "{host}"
tls = "{tls}"
username = "alex@example.org"
password = {{ env = "IMAP_PASSWORD" }}
{extra}

[people.sam.email]
addresses = ["Sam@Example.org"]
{person}
"""


def config_text(host: str = "imap.example.org", tls: str = "tls", extra: str = "",
                person: str = "") -> str:
    return SECTION.format(host=host, tls=tls, extra=extra, person=person)


def test_a_full_section_loads_with_its_defaults(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, extra=config_text()), environ={"IMAP_PASSWORD": "pw"})
    section = config.connectors.email
    assert section is not None
    assert section.folders == ["INBOX"] and section.idle and section.poll_interval == "60s"
    assert config.secrets["connectors.email.password"] == "pw"
    [connector] = build_connectors(config)
    assert connector.name == "email" and connector.feeds() == ["sam/email"]


def test_plain_imap_is_refused_beyond_this_machine(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write_config(tmp_path, extra=config_text(tls="none")),
             environ={"IMAP_PASSWORD": "pw"})
    assert "connectors.email.tls" in str(caught.value)
    load(write_config(tmp_path / "b", extra=config_text(host="127.0.0.1", tls="none")),
         environ={"IMAP_PASSWORD": "pw"})


@pytest.mark.parametrize(("extra", "person"), [("require_auth = true", ""),
                                               ("", "require_auth = true")])
def test_require_auth_needs_whose_pass(tmp_path: Path, extra: str, person: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write_config(tmp_path, extra=config_text(extra=extra, person=person)),
             environ={"IMAP_PASSWORD": "pw"})
    assert "connectors.email.authserv_id" in str(caught.value)


def test_a_missing_password_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write_config(tmp_path, extra=config_text()), environ={})
    assert "connectors.email.password" in str(caught.value)


def test_the_persons_mail_addresses_are_watched_by_the_guard(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, extra=config_text()), environ={"IMAP_PASSWORD": "pw"})
    guard = watched(config)
    assert guard.owner(url_keys("mailto:sam@example.org")) == "sam"
    assert guard.owner(url_keys("mailtos://me:pw@smtp.example.org?to=SAM@example.org")) == "sam"
    assert guard.owner(url_keys("mailto:alex@example.org")) is None


def test_an_apprise_contact_to_the_persons_mail_is_refused_at_load(tmp_path: Path) -> None:
    text = config_text() + """
[contacts.nan]
name = "Nan"
apprise = ["mailto://me:pw@smtp.example.org?to=sam@example.org"]
"""
    with pytest.raises(ConfigError) as caught:
        load(write_config(tmp_path, extra=text), environ={"IMAP_PASSWORD": "pw"})
    assert "contacts.nan.apprise" in str(caught.value)
