"""`watcher init`: the questions a trusted contact can answer, turned into a commented config.

The file is written 0600 (it names people and their accounts) and never overwrites one
that exists. Secrets are not asked for: the config names environment variables instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Ask = Callable[[str], str]


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "person"


def toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Answers:
    person: str = ""
    timezone: str = "UTC"
    telegram_user: str = ""
    signal_number: str = ""
    bluesky_handle: str = ""
    contacts: list[dict[str, str]] = field(default_factory=list)
    phrase: str = ""
    action: str = ""
    signal_service: str = ""

    def uses(self, platform: str) -> bool:
        mine = {"telegram": self.telegram_user, "signal": self.signal_number,
                "bluesky": self.bluesky_handle}[platform]
        return bool(mine) or any(c.get(platform) for c in self.contacts)


def _ask(ask: Ask, question: str, default: str = "", check: Callable[[str], str | None]
         = lambda _: None) -> str:
    while True:
        shown = f"{question} [{default}]: " if default else f"{question}: "
        answer = ask(shown).strip() or default
        problem = check(answer)
        if problem is None:
            return answer
        print(problem)


def _required(answer: str) -> str | None:
    return None if answer else "Please answer this one."


def _zone(answer: str) -> str | None:
    try:
        ZoneInfo(answer)
    except (ZoneInfoNotFoundError, ValueError):
        return "Unknown time zone; use a name like Europe/London or America/New_York."
    return None


def _digits(answer: str) -> str | None:
    return None if not answer or answer.lstrip("-").isdigit() else "Digits only, please."


def _phone(answer: str) -> str | None:
    ok = not answer or re.fullmatch(r"\+\d{6,15}", answer)
    return None if ok else "Write the number with its country code, like +447700900123."


def _url(answer: str) -> str | None:
    ok = not answer or re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", answer)
    return None if ok else ("Write the whole Apprise URL, like ntfys://ntfy.sh/my-topic or "
                            "mailtos://user:password@example.com (see Apprise's wiki).")


def secret_path(contact_key: str) -> str:
    """Where `watcher init` keeps a contact's Apprise URL (it may hold a password or token):
    a file beside the config, readable by its owner only, named in the config."""
    return f"secrets/{contact_key}.apprise"


def interview(ask: Ask) -> Answers:
    a = Answers()
    print("Who is watched? (Their name appears only in alerts to contacts.)")
    a.person = _ask(ask, "Name of the person being watched", check=_required)
    a.timezone = _ask(ask, "Their time zone", "Europe/London", _zone)
    a.telegram_user = _ask(ask, "Their Telegram user id (blank if not watched on Telegram)",
                           check=_digits)
    a.signal_number = _ask(ask, "Their Signal number (blank if not watched on Signal)",
                           check=_phone)
    a.bluesky_handle = _ask(ask, "Their Bluesky handle (blank if not watched on Bluesky)")
    print("Who should be alerted? Add each contact; leave the name blank to finish.")
    while True:
        name = _ask(ask, "Contact's name" + (" (blank to finish)" if a.contacts else ""),
                    check=_required if not a.contacts else lambda _: None)
        if not name:
            break
        a.contacts.append({
            "name": name,
            "telegram": _ask(ask, f"{name}'s Telegram chat id with the bot (blank to skip)",
                             check=_digits),
            "signal": _ask(ask, f"{name}'s Signal number (blank to skip)", check=_phone),
            "apprise": _ask(ask, f"{name}'s Apprise URL: e-mail, ntfy, Matrix, an SMS gateway "
                            "... (blank to skip; kept out of the config)", check=_url),
        })
    if a.uses("signal"):
        a.signal_service = _ask(ask, "The number signal-cli-rest-api serves (the linked "
                                "account)", check=lambda x: _required(x) or _phone(x))
    print("The first code.")
    a.phrase = _ask(ask, "The exact phrase agreed (e.g. the network went down at work)",
                    check=_required)
    a.action = _ask(ask, "What should the contacts do when it is used",
                    "Call 999 and ask them to check on {person}")
    return a


def render(a: Answers) -> str:
    key = slug(a.person)
    out = ["# Written by `watcher init`. Check it with: watcher check --config THIS_FILE",
           "# Every option is described in docs/configuration.md.", "",
           "[watcher]", 'database = "watcher.db"', f"timezone = {toml_string(a.timezone)}", "",
           f"[people.{key}]", f"name = {toml_string(a.person)}"]
    if a.telegram_user:
        out.append(f"telegram = {{ user_id = {a.telegram_user} }}")
    if a.signal_number:
        out.append(f"signal = {{ number = {toml_string(a.signal_number)} }}"
                   "   # add uuid = \"...\" when you know it")
    if a.bluesky_handle:
        out.append(f"bluesky = {{ handle = {toml_string(a.bluesky_handle)} }}")
    keys = []
    for contact in a.contacts:
        ckey = slug(contact["name"])
        keys.append(ckey)
        out += ["", f"[contacts.{ckey}]", f"name = {toml_string(contact['name'])}"]
        if contact["telegram"]:
            out.append(f"telegram = {{ chat_id = {contact['telegram']} }}")
        if contact["signal"]:
            out.append(f"signal = {{ number = {toml_string(contact['signal'])} }}")
        if contact.get("apprise"):
            out.append(f"apprise = [{{ file = {toml_string(secret_path(ckey))} }}]"
                       "   # the URL is in that file (0600), not here")
        if not (contact["telegram"] or contact["signal"] or contact.get("apprise")):
            out.append("console = true   # replace with a real channel: telegram, signal, apprise")
    contacts = ", ".join(toml_string(k) for k in keys)
    message = "{person} used the '{code}' code at {time} ({link}). " + a.action.rstrip(".") + "."
    reminder = "Nobody has acknowledged the alert about {person} yet. " + a.action
    out += ["", "[codes.first-code]", f"person = {toml_string(key)}",
            f"phrase = [{toml_string(a.phrase)}]", 'playbook = "first-response"', "",
            "[playbooks.first-response]", "steps = [",
            f"  {{ notify = [{contacts}], message = {toml_string(message)} }},",
            '  { wait_ack = "10m" },',
            f"  {{ notify = [{contacts}], message = {toml_string(reminder)} }},",
            "]"]
    out += _connectors(a)
    return "\n".join(out) + "\n"


def _connectors(a: Answers) -> list[str]:
    out = []
    if a.uses("telegram"):
        out += ["", "[connectors.telegram]   # see docs/telegram.md",
                'token = { env = "WATCHER_TELEGRAM_TOKEN" }   # the bot token, never inline']
    if a.uses("signal"):
        out += ["", "[connectors.signal]   # see docs/signal.md", 'url = "http://127.0.0.1:8080"',
                f"number = {toml_string(a.signal_service)}"]
    if a.bluesky_handle:
        out += ["", "[connectors.bluesky]   # see docs/bluesky.md"]
    return out


def write_secrets(folder: Path, a: Answers) -> list[Path]:
    """Write each contact's Apprise URL to its own file, 0600, in a 0700 folder; never over
    an existing file."""
    written = []
    for contact in a.contacts:
        if not contact.get("apprise"):
            continue
        path = folder / secret_path(slug(contact["name"]))
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(contact["apprise"] + "\n")
        written.append(path)
    return written


def write_config(path: Path, text: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
