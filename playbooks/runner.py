"""The playbook clock: advance due steps and deliver the outbox, all from stored state.

Each step's effects (outbox rows) and the move to the next step are one transaction;
each delivery is a row before it is sent. A crash therefore loses nothing and repeats
at most the one message that was in flight. Timers are stored deadlines, so a restart
resumes them on time, or at once when overdue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from playbooks import outbox
from playbooks.channels import WAY_BACK, DeliveryError
from playbooks.drills import due_reminders
from playbooks.guard import Guard
from playbooks.templates import incident_fields, render
from watcher.core import secret_links as auth
from watcher.core.backoff import Backoff
from watcher.core.channel import Channel
from watcher.core.clock import utcnow
from watcher.core.config import Config, NotifyStep, WaitAckStep, parse_duration
from watcher.core.models import IncidentState
from watcher.core.rows import Mark, RunStatus
from watcher.core.store import Delivery, Run, Store

log = logging.getLogger("watcher.playbooks")

SEND_TIMEOUT = 30.0
DRILL_MARK = "[DRILL - a test: acknowledge it as you would a real alert, do nothing else]"
ACKED = "{acker} is handling {person}'s alert (#{incident}, '{code}' at {time})."
STOOD_DOWN = "Stand down: {person}'s alert (#{incident}, '{code}') was ended by {by}."
FALSE_ALL_CLEAR = ("{person} posted the agreed FALSE all-clear: they are NOT safe. "
                   "Do not stand down; carry on with the plan for alert #{incident}.")
DRILL_DUE = ("Reminder: a drill of {person}'s '{code}' code is due (last drill: {last}). "
             "Ask whoever runs the watcher to start one: watcher drill CODE.")
UNREACHABLE = ("Could not deliver alert #{incident} about {person} to {who} ({detail}). "
               "Please reach {who} another way.")
PLAYBOOK_ENDED = ("Nobody has acknowledged {person}'s alert (#{incident}, '{code}' at {time}) "
                  "and its playbook has run out: no more alerts will be sent. The alert stays "
                  "open until someone acknowledges or stands it down. Please make sure someone "
                  "is dealing with it.")
NO_REPLY = frozenset({"apprise", "console"})  # channels a contact cannot answer through
DELIVERY_BACKOFF = Backoff(first=5.0, cap=600.0)  # 5 s doubling to 10 minutes


def backoff(attempts: int) -> timedelta:
    """How long a delivery that failed `attempts` times before this one waits."""
    return timedelta(seconds=DELIVERY_BACKOFF.delay(attempts + 1))


class PlaybookRunner:
    def __init__(self, config: Config, store: Store, channels: Mapping[str, Channel],
                 clock: Callable[[], datetime] = utcnow, guard: Guard | None = None) -> None:
        self.config = config
        self.store = store
        self.channels = channels
        self.clock = clock
        self.guard = guard or Guard(config, store)

    async def tick(self) -> int:
        """Run every step and delivery that is due; return how many things were done."""
        done = self._notices() + self._drill_reminders()
        for run in self.store.due_runs(self.clock()):
            self._advance(run)
            done += 1
        done += await self.deliver_due()
        return done

    def _advance(self, run: Run) -> None:
        now = self.clock()
        incident = self.store.incident(run.incident_id)
        book = self.config.playbooks.get(run.playbook)
        with self.store.transaction():
            if incident is None or book is None or incident.state != IncidentState.OPEN \
                    or run.step >= len(book.steps):
                self.store.update_run(run.incident_id, step=run.step, due_at=now,
                                      waiting=False, repeats=run.repeats,
                                      status=RunStatus.FINISHED)
                if incident is not None and book is not None \
                        and incident.state == IncidentState.OPEN:
                    self._ran_out(run.incident_id, incident.drill, book.steps, now)
                return
            step = book.steps[run.step]
            if isinstance(step, NotifyStep):
                self._notify(run.incident_id, step, now)
                self.store.update_run(run.incident_id, step=run.step + 1, due_at=now,
                                      waiting=False, repeats=run.repeats)
            else:
                self._wait(run, step, now)

    def _wait(self, run: Run, step: WaitAckStep, now: datetime) -> None:
        if not run.waiting:
            # The wait began when the step before it was done (its due_at), not now: a crash
            # or a slow restart between the two must not push the escalation back.
            self.store.update_run(run.incident_id, step=run.step,
                                  due_at=run.due_at + parse_duration(step.wait_ack),
                                  waiting=True, repeats=run.repeats)
            return
        repeats = dict(run.repeats)
        done = repeats.get(str(run.step), 0)
        if step.repeat_from is not None and step.times is not None and done < step.times:
            repeats[str(run.step)] = done + 1
            next_step = step.repeat_from
        else:
            next_step = run.step + 1
        self.store.update_run(run.incident_id, step=next_step, due_at=now, waiting=False,
                              repeats=repeats)

    def _ran_out(self, incident_id: int, drill: bool, steps: Sequence[object],
                 now: datetime) -> None:
        """Nobody acknowledged and the last step is done. The incident stays open (status
        shows it) until someone acts. The contacts are told in this same transaction, so a
        crash cannot lose it, when the playbook ends on a wait: that wait has run out with
        no answer. Not when it ends on a notify (that message has just gone out, and nobody
        was given time to answer it), nor for a drill (its report says so and `watcher
        drill` ends it)."""
        self.store.log(now, "incident", incident_id, {"state": "open", "playbook": "ended"})
        if drill or not steps or not isinstance(steps[-1], WaitAckStep):
            return
        self._send(incident_id, self.store.told(incident_id), PLAYBOOK_ENDED, {}, now,
                   "notice")

    def _notify(self, incident_id: int, step: NotifyStep, now: datetime) -> None:
        self._send(incident_id, step.notify, step.message, step.messages, now)

    def _send(self, incident_id: int, contacts: Iterable[str], message: str,
              per_contact: Mapping[str, str], now: datetime, kind: str = "alert",
              extra: Mapping[str, str] | None = None) -> None:
        incident = self.store.incident(incident_id)
        if incident is None:
            return
        fields = incident_fields(self.config, incident)
        prefix = f"{DRILL_MARK} " if incident.drill else ""

        def text(contact: str, channel: str) -> str:
            # Rendered per channel: each has its own length limit to fit.
            template = per_contact.get(contact, message)
            return render(template, fields, contact, self.config, extra, channel, prefix) \
                + self._way_back(incident_id, contact, channel, now)

        outbox.tell(self.config, self.store, contacts, text, kind, now, incident_id)

    def _way_back(self, incident_id: int, contact: str, channel: str, now: datetime) -> str:
        """A channel that cannot carry a reply ends with the contact's link to this alert on
        the contacts' page (it opens on the Acknowledge button). The link is scoped to this one
        alert (watcher/core/secret_links.py): whoever sees the message can act on it, no more."""
        web = self.config.web
        if web is None or web.public_url is None or channel not in NO_REPLY:
            return ""
        token = auth.mint(self.store, contact, auth.incident_scope(incident_id), now)
        return f"\n\n{WAY_BACK}{auth.link(web.public_url, token)}"

    def _notices(self) -> int:
        """Tell contacts what changed: an ack, a stand-down, a false all-clear, a failure."""
        pending = self.store.pending_notices()
        for notice_id, incident_id, kind, actor in pending:
            now = self.clock()
            with self.store.transaction():
                self._notice(incident_id, kind, actor or "", now)
                self.store.notice_done(notice_id)
        return len(pending)

    def _notice(self, incident_id: int, kind: str, actor: str, now: datetime) -> None:
        incident = self.store.incident(incident_id)
        told = self.store.told(incident_id)
        if incident is None:
            return
        book = self.config.playbooks.get(self._playbook(incident.code))
        if kind == "acknowledged":
            acker = self._name(actor)
            if book is not None and book.on_ack is not None:
                self._send(incident_id, book.on_ack.notify, book.on_ack.message, {}, now,
                           "notice", {"acker": acker})
            else:
                others = [c for c in told if c != actor]
                self._send(incident_id, others, ACKED, {}, now, "notice", {"acker": acker})
        elif kind == "stood_down":
            by = "the stand-down code" if actor.startswith("code:") else self._name(actor)
            self._send(incident_id, told, STOOD_DOWN, {}, now, "notice", {"by": by})
        elif kind == "false_all_clear":
            self._send(incident_id, told, FALSE_ALL_CLEAR, {}, now, "notice")
        elif kind == "delivery_failed":
            contact, _, detail = actor.partition("\t")
            others = [c for c in told if c != contact]
            self._send(incident_id, others, UNREACHABLE, {}, now, "failure",
                       {"who": self._name(contact), "detail": detail})

    def _drill_reminders(self) -> int:
        now = self.clock()
        due = due_reminders(self.config, self.store, now)
        for code, last in due:
            spec = self.config.codes[code]
            text = DRILL_DUE.format(code=code, last=last,
                                    person=self.config.people[spec.person].name)
            with self.store.transaction():
                outbox.tell(self.config, self.store,
                            outbox.playbook_contacts(self.config, spec.playbook), text,
                            "reminder", now)
                self.store.mark(Mark.DRILL_REMINDER, code, now)
        return len(due)

    def _playbook(self, code: str) -> str:
        found = self.config.codes.get(code)
        return found.playbook or "" if found else ""

    def _name(self, contact: str) -> str:
        return self.config.actor_name(contact)

    async def deliver_due(self) -> int:
        """Send what is due, one message at a time.

        One at a time so that a crash can repeat at most the one message in flight. A
        channel that just failed is not tried again this round: its other messages wait for
        the retry, so one hanging service costs one timeout, not one per message.
        """
        due = self.store.due_deliveries(self.clock())
        failing: dict[str, datetime] = {}
        for delivery in due:
            if delivery.channel in failing:
                with self.store.transaction():
                    self.store.delivery_postpone(delivery.id, failing[delivery.channel])
                continue
            if not await self._deliver(delivery):
                failing[delivery.channel] = self.clock() + backoff(0)
        return len(due)

    async def _deliver(self, delivery: Delivery) -> bool:
        """Send one message; False when its channel failed (the message is retried).

        Every outbox row is sent here and nowhere else, so this is where the guard stands: a
        destination on a watched person's side is a permanent failure, told to the others.
        """
        refused = self.guard.refusal(delivery.channel, delivery.contact, delivery.address)
        if refused is not None:
            self._failed(delivery, refused, permanent=True)
            return True  # this address's problem, not the channel's
        channel = self.channels.get(delivery.channel)
        try:
            if channel is None:
                raise DeliveryError(f"channel {delivery.channel} is not running", permanent=False)
            incident = delivery.incident_id if delivery.kind == "alert" else None
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands
            # as the send finishes, and the watcher then cannot be stopped.
            async with asyncio.timeout(SEND_TIMEOUT):
                ref = await channel.send(delivery.contact, delivery.address, delivery.text,
                                         incident)
        except DeliveryError as exc:
            self._failed(delivery, exc.message, exc.permanent)
            return exc.permanent  # a permanent error is this address's, not the channel's
        except TimeoutError:
            self._failed(delivery, f"no answer from {delivery.channel} in {SEND_TIMEOUT:.0f}s",
                         permanent=False)
            return False
        with self.store.transaction():
            self.store.delivery_done(delivery.id, self.clock(), ref)
        log.info("delivered alert %s to %s via %s", delivery.id, delivery.contact,
                 delivery.channel)
        return True

    def _failed_before(self, delivery: Delivery, error: str) -> bool:
        return any(row["id"] != delivery.id and row["status"] == "failed"
                   and (row["contact"], row["channel"], row["error"])
                   == (delivery.contact, delivery.channel, error)
                   for row in self.store.deliveries(delivery.incident_id))

    def _failed(self, delivery: Delivery, error: str, permanent: bool) -> None:
        with self.store.transaction():
            if permanent:
                self.store.delivery_failed(delivery.id, error, self.clock())
                # Tell the others, never silently drop; failures about failures stop here,
                # and so does the same failure again (each escalation to a refused address).
                if delivery.incident_id is not None and delivery.kind != "failure" \
                        and not self._failed_before(delivery, error):
                    self.store.add_notice(delivery.incident_id, "delivery_failed",
                                          f"{delivery.contact}\t{delivery.channel}: {error}",
                                          self.clock())
            else:
                self.store.delivery_retry(delivery.id, error,
                                          self.clock() + backoff(delivery.attempts))
        log.warning("delivery %s to %s via %s failed (%s): %s", delivery.id, delivery.contact,
                    delivery.channel, "permanent" if permanent else "will retry", error)
