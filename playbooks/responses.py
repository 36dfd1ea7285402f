"""What contacts send back: acknowledgements, stand-down and status commands.

Connectors resolve the sender to a configured contact, by a stable id, before anything
reaches here; a stranger's message never does, and gets no reply at all (the bot must not
reveal itself). A contact acts only on incidents they, or the chat they write in, were told
about. An answer means exactly what it says:

- the alert's button or `/ack N` acknowledges incident N;
- a reply (or an ack reaction) to one of our messages is about that message's incident,
  looked up by chat and message id, and about nothing else;
- an unquoted ack word acknowledges the one open incident, and asks which when several are.

Every ack is confirmed to its sender; an answer about an incident that has ended says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime

from playbooks.ack_text import ACK_EMOJI, clean, is_ack_emoji, is_ack_text
from watcher.core.clock import utcnow
from watcher.core.config import Config
from watcher.core.models import IncidentState, Response
from watcher.core.store import Store

__all__ = ["ACK_EMOJI", "HOW_TO_ACK", "Responder", "is_ack_text"]

_COMMAND = re.compile(r"^/(standdown|stand_down|status|ack)(?:@\w+)?(?:\s+#?(\d{1,12}))?$")
_SLASH = re.compile(r"^/\w")
LIVE = (IncidentState.OPEN.value, IncidentState.ACKNOWLEDGED.value)
ANY = tuple(s.value for s in IncidentState)
HOW_TO_ACK = ("To acknowledge, reply OK to the alert, or send /ack NUMBER. /status lists "
              "your open alerts.")
HOW_TO_ACK_BUTTON = ("To acknowledge, press the alert's button, reply OK to the alert, or "
                     "send /ack NUMBER. /status lists your open alerts.")
ENDED = {IncidentState.STOOD_DOWN: "was stood down", IncidentState.RESOLVED: "was resolved"}


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class Responder:
    def __init__(self, config: Config, store: Store,
                 clock: Callable[[], datetime] = utcnow,
                 status: Callable[[], str] | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.status = status

    def handle(self, response: Response) -> str | None:
        """Act on a contact's response; return the text to answer them with, if any."""
        if response.contact not in self.config.contacts:
            return None
        if response.incident is not None:  # the alert's own button
            return self._ack(response, response.incident)
        if response.emoji is not None:
            return self._reaction(response)
        text = clean(response.text).strip()
        command = _COMMAND.match(text)
        if command:
            name, number = command.group(1), command.group(2)
            target = int(number) if number else None
            if name == "status":
                return self.status() if self.status else self._incident_status(response)
            if name == "ack":
                return self._ack(response, target) if target else self._plain_ack(response)
            return self._stand_down(response, target)
        if is_ack_text(response.text):
            return self._plain_ack(response)
        return self._not_understood(response, text)

    # -- what a response is about -----------------------------------------------------

    def _replied_incident(self, response: Response) -> int | None:
        if response.reply_to is None:
            return None
        return self.store.incident_by_ref(response.channel, response.chat, response.reply_to)

    def _told(self, response: Response, states: tuple[str, ...]) -> list[int]:
        """Incidents the contact was told about, or that were sent into the chat they write
        in (a contact group's members act on what the group was sent)."""
        found = set(self.store.incidents_told_to(response.contact, states))
        if response.chat is not None:
            found.update(self.store.incidents_told_in(response.channel, response.chat, states))
        return sorted(found)

    def _reaction(self, response: Response) -> str | None:
        # A reaction is only ever to one message: ours (acks that incident) or another one
        # (none of our business: silence, as for any other emoji).
        target = self._replied_incident(response)
        if target is None or not is_ack_emoji(response.emoji or ""):
            return None
        return self._ack(response, target)

    def _plain_ack(self, response: Response) -> str | None:
        target = self._replied_incident(response)
        if target is not None:
            return self._ack(response, target)
        if response.group and response.reply_to is not None:
            return None  # in a group, a quoted "ok" answers a person, not an alert
        live = self._told(response, LIVE)
        if not live:
            return "There is no open alert for you to acknowledge."
        if len(live) > 1:
            listed = ", ".join(f"#{i}" for i in live)
            return (f"Several alerts are open ({listed}). Reply to the alert you are "
                    "handling, or send /ack NUMBER.")
        return self._ack(response, live[0])

    def _not_understood(self, response: Response, text: str) -> str | None:
        # In a contact group people talk to each other: answer only what was said to us
        # (a reply to our message, or a command).
        if response.group and self._replied_incident(response) is None \
                and not _SLASH.match(text):
            return None
        return HOW_TO_ACK_BUTTON if response.channel == "telegram" else HOW_TO_ACK

    # -- acting ------------------------------------------------------------------------

    def _ack(self, response: Response, target: int) -> str | None:
        if target not in self._told(response, ANY):
            return f"No alert #{target} was sent to you."
        incident = self.store.incident(target)
        if incident is None:
            return None
        if incident.state in ENDED:
            return (f"Alert #{target} has already ended (it {ENDED[incident.state]}): "
                    "there is nothing to acknowledge.")
        now = self.clock()
        with self.store.transaction():
            first = self.store.acknowledge(target, response.contact, now, response.channel)
            if first:
                self.store.finish_run(target, now)
                self.store.add_notice(target, "acknowledged", response.contact, now)
        if first:
            told = self._will_be_told(target, response.contact)
            tail = f"; {_names(told)} {'was' if len(told) == 1 else 'were'} told." if told \
                else "."
            return f"Thank you. You are handling alert #{target}{tail}"
        acker = self.store.acked_by(target)
        if acker == response.contact:
            return f"You are already handling alert #{target}."
        return f"Alert #{target} is already being handled by {self._name(acker or '?')}."

    def _will_be_told(self, incident_id: int, acker: str) -> list[str]:
        """Who the ack notice goes to (as the playbook runner sends it), by name."""
        incident = self.store.incident(incident_id)
        code = self.config.codes.get(incident.code) if incident else None
        book = self.config.playbooks.get(code.playbook or "") if code else None
        contacts: Iterable[str] = (book.on_ack.notify if book is not None and book.on_ack
                                   else self.store.told(incident_id))
        return [self._name(c) for c in dict.fromkeys(contacts) if c != acker
                and c in self.config.contacts]

    def _stand_down(self, response: Response, explicit: int | None) -> str:
        if explicit is None:
            live = self._told(response, LIVE)
            if not live:
                return "There is no open alert you were told about to stand down."
            if len(live) > 1:
                listed = ", ".join(f"#{i}" for i in live)
                return (f"Several alerts are open ({listed}): send /standdown NUMBER for "
                        "the one that is over.")
            explicit = live[0]
        if explicit not in self._told(response, ANY):
            return f"No alert #{explicit} was sent to you."
        incident = self.store.incident(explicit)
        if incident is None:
            return f"No alert #{explicit} was sent to you."
        if incident.state in ENDED:
            return f"Alert #{explicit} has already ended (it {ENDED[incident.state]})."
        now = self.clock()
        with self.store.transaction():
            self.store.set_incident_state(explicit, IncidentState.STOOD_DOWN, now,
                                          by=response.contact)
            self.store.add_notice(explicit, "stood_down", response.contact, now)
        return f"Stood down: #{explicit}. Everyone alerted is told."

    def _name(self, contact: str) -> str:
        return self.config.actor_name(contact)

    def _incident_status(self, response: Response) -> str:
        """The open alerts this contact (or their chat) was told about, and nothing else."""
        live = [i for i in (self.store.incident(n) for n in self._told(response, LIVE)) if i]
        if not live:
            return "No open alerts."
        lines = []
        for i in live:
            person = self.config.people[i.person].name if i.person in self.config.people \
                else i.person
            who = ("nobody has acknowledged" if i.state == IncidentState.OPEN
                   else f"handled by {self._name(self.store.acked_by(i.id) or '?')}")
            lines.append(f"#{i.id} {i.code} ({person}): {who}")
        return "\n".join(lines)
