"""The playbook clock: advance due steps and deliver the outbox, all from stored state.

Each step's effects (outbox rows) and the move to the next step are one transaction;
each delivery is a row before it is sent. A crash therefore loses nothing and repeats
at most the one message that was in flight. Timers are stored deadlines, so a restart
resumes them on time, or at once when overdue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from playbooks.channels import Channel, DeliveryError, addresses
from playbooks.templates import incident_fields, render
from watcher.config import Config, NotifyStep, WaitAckStep, parse_duration
from watcher.models import IncidentState, utcnow
from watcher.store import Delivery, Run, Store

log = logging.getLogger("watcher.playbooks")

SEND_TIMEOUT = 30.0
MAX_BACKOFF = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=5 * 2 ** min(attempts, 10)), MAX_BACKOFF)


class PlaybookRunner:
    def __init__(self, config: Config, store: Store, channels: Mapping[str, Channel],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.store = store
        self.channels = channels
        self.clock = clock

    async def tick(self) -> int:
        """Run every step and delivery that is due; return how many things were done."""
        done = 0
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
                                      waiting=False, repeats=run.repeats, status="finished")
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
            self.store.update_run(run.incident_id, step=run.step,
                                  due_at=now + parse_duration(step.wait_ack), waiting=True,
                                  repeats=run.repeats)
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

    def _notify(self, incident_id: int, step: NotifyStep, now: datetime) -> None:
        incident = self.store.incident(incident_id)
        if incident is None:
            return
        fields = incident_fields(self.config, incident)
        for contact in step.notify:
            text = render(step.messages.get(contact, step.message), fields, contact, self.config)
            if incident.drill:
                text = f"[DRILL - this is a test, no action needed] {text}"
            for channel, address in addresses(self.config, contact):
                self.store.enqueue(incident_id, contact, channel, address, text, now)

    async def deliver_due(self) -> int:
        due = self.store.due_deliveries(self.clock())
        if due:
            await asyncio.gather(*(self._deliver(d) for d in due))
        return len(due)

    async def _deliver(self, delivery: Delivery) -> None:
        channel = self.channels.get(delivery.channel)
        try:
            if channel is None:
                raise DeliveryError(f"channel {delivery.channel} is not running", permanent=False)
            await asyncio.wait_for(channel.send(delivery.contact, delivery.address,
                                                delivery.text), SEND_TIMEOUT)
        except DeliveryError as exc:
            self._failed(delivery, exc.message, exc.permanent)
            return
        except TimeoutError:
            self._failed(delivery, f"no answer from {delivery.channel} in {SEND_TIMEOUT:.0f}s",
                         permanent=False)
            return
        with self.store.transaction():
            self.store.delivery_done(delivery.id, self.clock())
        log.info("delivered alert %s to %s via %s", delivery.id, delivery.contact,
                 delivery.channel)

    def _failed(self, delivery: Delivery, error: str, permanent: bool) -> None:
        with self.store.transaction():
            if permanent:
                self.store.delivery_failed(delivery.id, error)
            else:
                self.store.delivery_retry(delivery.id, error,
                                          self.clock() + backoff(delivery.attempts))
        log.warning("delivery %s to %s via %s failed (%s): %s", delivery.id, delivery.contact,
                    delivery.channel, "permanent" if permanent else "will retry", error)
