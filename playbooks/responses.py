"""What contacts send back: acknowledgements, stand-down and status commands.

Connectors resolve the sender to a registered contact before anything reaches here; a
stranger's message never does, and gets no reply at all (the bot must not reveal itself).
A contact can only act on incidents they were told about.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime

from watcher.config import Config
from watcher.models import IncidentState, Response, utcnow
from watcher.store import Store

ACK_WORDS = ("ok", "okay", "on it", "im on it", "i am on it", "got it", "yes", "handling it",
             "ack", "/ack", "k")
ACK_EMOJI = frozenset({"👍", "👌", "✅", "🆗", "👍🏻", "👍🏼", "👍🏽", "👍🏾", "👍🏿"})
_COMMAND = re.compile(r"^/(standdown|stand_down|status|ack)(?:@\w+)?(?:\s+#?(\d+))?\s*$")


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold().replace("'", "").replace("’", "")
    return re.sub(r"[^\w/ ]+", " ", folded).strip()


def is_ack_text(text: str) -> bool:
    plain = _plain(text)
    if text.strip() in ACK_EMOJI:
        return True
    return any(plain == w or plain.startswith(w + " ") for w in ACK_WORDS)


class Responder:
    def __init__(self, config: Config, store: Store,
                 clock: Callable[[], datetime] = utcnow,
                 status: Callable[[], str] | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.status = status or self._incident_status

    def handle(self, response: Response) -> str | None:
        """Act on a contact's response; return the text to answer them with, if any."""
        if response.contact not in self.config.contacts:
            return None
        command = _COMMAND.match(response.text.strip().lower())
        if command:
            name, number = command.group(1), command.group(2)
            target = int(number) if number else None
            if name == "status":
                return self.status()
            if name == "ack":
                return self._ack(response, target)
            return self._stand_down(response.contact, target)
        if response.incident is not None:
            return self._ack(response, response.incident)
        if response.emoji is not None:
            return self._ack(response, None) if response.emoji in ACK_EMOJI else None
        if is_ack_text(response.text):
            return self._ack(response, None)
        return None

    def _target(self, response: Response, explicit: int | None) -> int | list[int]:
        """The incident a response is about, or the candidates when it cannot tell."""
        told = self.store.incidents_told_to(response.contact, ("open", "acknowledged"))
        if explicit is not None:
            return explicit if explicit in told else []
        if response.reply_to is not None:
            found = self.store.incident_by_ref(response.channel, response.reply_to)
            if found is not None and found[0] in told:
                return found[0]
            if response.emoji is not None:
                return []  # a reaction to something that is not one of our alerts
        return told[0] if len(told) == 1 else told

    def _ack(self, response: Response, explicit: int | None) -> str | None:
        target = self._target(response, explicit)
        if isinstance(target, list):
            if not target:
                return None
            listed = ", ".join(f"#{i}" for i in target)
            return (f"Several alerts are open ({listed}). Reply to the alert you are "
                    "handling, or send /ack NUMBER.")
        now = self.clock()
        with self.store.transaction():
            first = self.store.acknowledge(target, response.contact, now)
            if first:
                self.store.finish_run(target, now)
                self.store.add_notice(target, "acknowledged", response.contact, now)
        if first:
            return f"Thank you. You are handling alert #{target}; the others have been told."
        acker = self.store.acked_by(target)
        if acker and acker != response.contact:
            return f"Alert #{target} is already being handled by {self._name(acker)}."
        return None

    def _stand_down(self, contact: str, explicit: int | None) -> str:
        told = self.store.incidents_told_to(contact, ("open", "acknowledged"))
        targets = [explicit] if explicit in told else ([] if explicit else told)
        if not targets:
            return "There is no open alert you were told about to stand down."
        now = self.clock()
        with self.store.transaction():
            for incident in targets:
                self.store.set_incident_state(incident, IncidentState.STOOD_DOWN, now)
                self.store.add_notice(incident, "stood_down", contact, now)
        return f"Stood down: {', '.join(f'#{i}' for i in targets)}. Everyone alerted is told."

    def _name(self, contact: str) -> str:
        found = self.config.contacts.get(contact)
        return found.name if found else contact

    def _incident_status(self) -> str:
        open_ = self.store.incidents(IncidentState.OPEN)
        acked = self.store.incidents(IncidentState.ACKNOWLEDGED)
        if not open_ and not acked:
            return "No open alerts."
        lines = [f"#{i.id} {i.code} ({i.person}): open, nobody has acknowledged" for i in open_]
        lines += [f"#{i.id} {i.code} ({i.person}): handled by "
                  f"{self._name(self.store.acked_by(i.id) or '?')}" for i in acked]
        return "\n".join(lines)
