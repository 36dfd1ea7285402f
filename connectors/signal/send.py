"""Sending over Signal: who may never be messaged, and what a failure means.

Only plain messages are ever sent: never read receipts, typing indicators or reactions,
which would tell a watched person (or whoever holds their phone) that someone is reading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.signal.client import SignalClient, SignalError, SignalRateLimited
from connectors.signal.translate import Directory, normalise_number
from watcher.core.models import DeliveryError

SENDING_FEED = "signal-sending"
_GONE = ("unregistered", "unknown", "not registered", "not found", "no such")


def _gone(reason: str) -> bool:
    return any(word in reason.lower() for word in _GONE)


def captcha_problem(url: str, account: str, tokens: list[str]) -> str:
    """What to do when Signal wants a captcha before this account may send again.

    The challenge token is not a credential (it cannot read or send anything; it only names
    the challenge), and without it nobody can lift the limit, so it is shown."""
    token = tokens[0] if tokens else "TOKEN"
    return (f"Signal refuses to send from {account} until a captcha is solved; alerts are "
            "NOT being delivered on Signal. Open https://signalcaptchas.org/challenge/"
            "generate.html, solve it, copy the signalcaptcha:// link it ends on, then run: "
            f"curl -X POST {url}/v1/accounts/{account}/rate-limit-challenge -H "
            f"'Content-Type: application/json' -d '{{\"challenge_token\": \"{token}\", "
            "\"captcha\": \"signalcaptcha://...\"}'. Undelivered alerts are retried by "
            "their other channels; see docs/signal.md.")


class SignalSending:
    """Sends one text to one contact address, refusing every address it must never use."""

    def __init__(self, client: SignalClient, directory: Directory, url: str,
                 report: Callable[[str, str, bool], None] | None = None) -> None:
        self.client = client
        self.directory = directory
        self.url = url.rstrip("/")
        self.report = report  # sink.feed_failed once the connector has started
        self.ok: Callable[[str], None] | None = None  # sink.feed_ok

    def refusal(self, address: str) -> str | None:
        """Why this address must never be messaged, if it must not."""
        if person := self.directory.watched(address):
            return (f"refused: {address} is the Signal number of watched person {person} "
                    f"(people.{person}.signal.number); nothing is ever sent there")
        if own := self.directory.own_person:
            return (f"refused: the Signal account the watcher uses is {own}'s own, so an alert "
                    "sent from it would show on their phone; use a separate number for alerts "
                    "(docs/signal.md)")
        if normalise_number(address) == self.directory.account:
            return (f"refused: {address} is the watcher's own Signal account; a linked "
                    "account cannot alert its owner (docs/signal.md)")
        return None

    async def send(self, address: str, text: str) -> str:
        """Send; return the message timestamp, which quotes and reactions refer to."""
        if (why := self.refusal(address)) is not None:
            raise DeliveryError(why, permanent=True)
        try:
            result = await self.client.send([address], text)
        except ValueError as exc:
            raise DeliveryError(f"signal: {exc}", permanent=True) from exc
        except SignalError as exc:
            raise self._error(exc) from exc
        if result.failed:
            raise self._recipient_error(result.failed[0])
        if self.ok is not None:
            self.ok(SENDING_FEED)
        return result.timestamp

    def _recipient_error(self, failure: dict[str, Any]) -> DeliveryError:
        reason = str(failure.get("reason") or "unknown reason")
        return DeliveryError(f"signal: not delivered: {reason}", permanent=_gone(reason))

    def _error(self, exc: SignalError) -> DeliveryError:
        if isinstance(exc, SignalRateLimited) and exc.challenge_tokens:
            if self.report is not None:
                problem = captcha_problem(self.url, self.client.number, exc.challenge_tokens)
                self.report(SENDING_FEED, problem, True)
            return DeliveryError("signal: Signal asks for a captcha before this account may "
                                 f"send again (see the {SENDING_FEED} feed)", permanent=True)
        if exc.status == 400 and "failed to send message" in exc.message.lower():
            # release 0.100 reports a recipient's failure as a 400 naming the reason
            return DeliveryError(exc.message, permanent=_gone(exc.message))
        return DeliveryError(exc.message, permanent=exc.permanent)
