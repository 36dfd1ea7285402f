"""Config errors name their TOML key path, all at once, and say what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import write_config
from watcher.core.config import ConfigError, load, parse_duration


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path, environ=env or {})
    return info.value.problems


def test_example_config_loads() -> None:
    config = load(Path(__file__).parent.parent / "config.example.toml", environ={})
    assert set(config.codes) == {"network-down", "flower", "like-alex-photo"}
    assert config.database.name == "watcher.db"
    assert config.database.parent == Path(__file__).parent.parent


def test_relative_paths_resolve_against_config_folder(tmp_path: Path) -> None:
    config = load(write_config(tmp_path / "sub"), environ={})
    assert config.database == (tmp_path / "sub" / "watcher.db").resolve()
    assert config.image_paths("flower") == [(tmp_path / "sub" / "flower.jpg").resolve()]


def test_unknown_person_names_key_and_known_people(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('person = "sam"\nimage', 'person = "sma"\nimage'))
    assert problems(path) == ['codes.flower.person: no person "sma"; known people: sam']


def test_unknown_playbook(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('playbook = "check-on-me"', 'playbook = "chek"'))
    assert problems(path) == [
        'codes.flower.playbook: no playbook "chek"; known playbooks: call-police, check-on-me']


def test_unknown_keys_are_errors_with_paths(tmp_path: Path) -> None:
    path = write_config(tmp_path, extra='[contacts.nan]\nname = "Nan"\nconsle = true\n')
    found = problems(path)
    assert found == ['contacts.nan.consle: unknown key; did you mean "console"? (known keys: '
                     'name, fields, console, telegram, signal, apprise, sms)']


def test_contact_without_channel(tmp_path: Path) -> None:
    path = write_config(tmp_path, extra='[contacts.nan]\nname = "Nan"\n')
    assert problems(path) == [
        "contacts.nan: no channel to reach Nan; add telegram, signal, apprise or console"]


def test_unknown_key_in_step(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('{ wait_ack = "5m" }', '{ wait_ak = "5m" }'))
    assert problems(path) == ['playbooks.call-police.steps[1]: a step is either '
                              '{ notify = [...], message = "..." } or { wait_ack = "5m" }']
    path.write_text(path.read_text().replace('{ wait_ak = "5m" }', '{ wait_ack = "5m", tims = 2 }'))
    assert problems(path) == ['playbooks.call-police.steps[1].tims: unknown key; did you mean '
                              '"times"? (known keys: wait_ack, repeat_from, times)']


def test_unknown_section(tmp_path: Path) -> None:
    path = write_config(tmp_path, extra="[contact.bob]\nname = 'Bob'\n")
    assert problems(path)[0].startswith("contact: unknown section; known sections: watcher")


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    text = path.read_text().replace('person = "sam"\nimage', 'person = "sma"\nimage')
    text = text.replace('playbook = "call-police"', 'playbook = "nope"')
    text = text.replace('image = ["flower.jpg"]', 'image = ["missing.jpg"]')
    text = text.replace('wait_ack = "5m"', 'wait_ack = "5 minutes"')
    path.write_text(text)
    found = problems(path)
    assert any(p.startswith("codes.flower.person:") for p in found)
    assert any(p.startswith("codes.network-down.playbook:") for p in found)
    assert any(p.startswith("codes.flower.image[0]: reference photo") and "does not exist" in p
               for p in found)
    assert any(p.startswith("playbooks.call-police.steps[1].wait_ack") for p in found)


def test_missing_file_and_invalid_toml(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.toml")[0].endswith("config file not found")
    bad = tmp_path / "bad.toml"
    bad.write_text("[watcher\n")
    assert "not valid TOML" in problems(bad)[0]


def test_template_fields_checked_at_load(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("posted the flower at {time}",
                                             "posted the flower at {tme}"))
    found = problems(path)
    assert len(found) == 1
    assert found[0].startswith(
        "playbooks.check-on-me.steps[0].message: unknown field {tme} (for contact alex)")


def test_contact_field_must_exist_for_that_contact(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("Nobody has confirmed yet for {person}.",
                                             "Nobody has confirmed; ring {phone}."))
    found = problems(path)
    assert found[0].startswith("playbooks.call-police.steps[2].message: unknown field {phone}")


def test_person_fields_available_in_templates(config_path: Path) -> None:
    # {address} is defined on sam, whose code uses call-police: accepted.
    assert load(config_path, environ={}).people["sam"].fields["address"] == "12 Acacia Avenue"


def test_broken_template_brace(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("posted the flower at {time}.",
                                             "posted the flower at {time."))
    assert "template cannot be read" in problems(path)[0]


def test_repeat_needs_times_and_an_earlier_step(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("repeat_from = 2, times = 2", "repeat_from = 3"))
    found = problems(path)
    assert "playbooks.call-police.steps[3].repeat_from: must point to an earlier step " \
           "(0 to 2; steps count from 0)" in found
    assert any(p.startswith("playbooks.call-police.steps[3].times: required") for p in found)


def test_code_needs_exactly_one_detector(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('image = ["flower.jpg"]',
                                             'image = ["flower.jpg"]\nphrase = ["x y"]'))
    assert problems(path) == ["codes.flower: give exactly one of phrase, image, reaction or "
                              "checkin (found 2)"]


def test_alert_to_watched_person_refused(tmp_path: Path) -> None:
    extra = """
    [people.kim]
    name = "Kim"
    telegram = { user_id = 555 }
    signal = { number = "+447700900001" }
    [contacts.kimself]
    name = "Kim"
    telegram = { chat_id = 555 }
    signal = { number = "+447700900001" }
    """
    found = problems(write_config(tmp_path, extra=extra))
    assert any(p.startswith("contacts.kimself.telegram.chat_id: this is the private chat of "
                            "watched person kim") for p in found)
    assert any(p.startswith("contacts.kimself.signal.number: this is the number of watched "
                            "person kim") for p in found)


def test_bad_timezone(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('timezone = "Europe/London"',
                                             'timezone = "Europe/Londn"'))
    assert problems(path) == ['watcher.timezone: unknown time zone "Europe/Londn"; '
                              "use a name like Europe/London"]


class TestSecrets:
    EXTRA = ('[contacts.nan]\nname = "Nan"\n'
             'apprise = [{ env = "NAN_URL" }, { file = "nan.secret" }]\n')

    def test_env_and_file_secrets_resolve(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, extra=self.EXTRA)
        secret = tmp_path / "nan.secret"
        secret.write_text("json://127.0.0.1:9/hook\n")
        os.chmod(secret, 0o600)
        config = load(path, environ={"NAN_URL": "ntfy://topic"})
        assert config.secrets == {"contacts.nan.apprise[0]": "ntfy://topic",
                                  "contacts.nan.apprise[1]": "json://127.0.0.1:9/hook"}

    def test_missing_env_and_open_file_refused(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, extra=self.EXTRA)
        secret = tmp_path / "nan.secret"
        secret.write_text("json://127.0.0.1:9/hook\n")
        os.chmod(secret, 0o644)
        found = problems(path)
        assert "contacts.nan.apprise[0]: environment variable NAN_URL is not set" in found
        assert f"contacts.nan.apprise[1]: secrets file {secret} is readable by others; " \
               f"run: chmod 600 {secret}" in found

    def test_secret_value_never_in_errors(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, extra=self.EXTRA)
        secret = tmp_path / "nan.secret"
        secret.write_text("json://SENTINEL-SECRET@127.0.0.1/hook\n")
        os.chmod(secret, 0o640)
        assert "SENTINEL-SECRET" not in "\n".join(problems(path, {"NAN_URL": "SENTINEL-ENV"}))


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200),
                                               ("1d", 86400), ("1h30m", 5400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "m5", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
