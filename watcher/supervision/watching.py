"""What `run` will really watch, said by `check` and at `run` start, from one source of truth.

A live feed exists for a person's identity on a platform whose connector section is
configured (watcher.supervision.expected_feeds, the list supervision holds to account); a
replay file is a feed too. A config that names no feed at all would start, say "watching",
and see nothing: that is a silent failure, so it is said loudly and kept as a blind watch
that the contacts are told about.
"""

from __future__ import annotations

from datetime import datetime

from watcher.core.config_schema import LIVE_PLATFORMS, Config
from watcher.core.store import Store
from watcher.supervision.supervisor import expected_feeds

# The health row of "nothing is watched": a feed name with no person, so supervision shows
# it while it is blind and the blind-watch alert reads "every feed is not being watched".
NOTHING_FEED = "every feed"
NOTHING_WATCHED = ("the config watches no feed at all: no watched person has an identity on a "
                   "platform with a connector section ("
                   + ", ".join(f"[connectors.{p}]" for p in LIVE_PLATFORMS)
                   + ") and [connectors.replay] lists no file, so a duress code sent anywhere "
                   "would NOT be seen")


def watches_nothing(config: Config) -> bool:
    replay = config.connectors.replay
    return not expected_feeds(config) and not (replay and replay.files)


def person_lines(config: Config, key: str) -> list[str]:
    """For `check`: each of a person's identities, watched or (a warning) not, and why."""
    feeds = set(expected_feeds(config))
    person = config.people[key]
    lines = []
    for platform in LIVE_PLATFORMS:
        if getattr(person, platform) is None:
            continue
        if f"{key}/{platform}" in feeds:
            lines.append(f"  watched: {platform} (by [connectors.{platform}])")
        else:
            lines.append(f"warning: people.{key}.{platform}: there is no [connectors.{platform}] "
                         f"section, so {person.name}'s {platform} is NOT watched")
    return lines


def record_nothing_watched(store: Store, config: Config, now: datetime) -> None:
    """Keep (or clear) the blind watch of a config that watches nothing.

    It is shown by `status`, and every contact is told on every channel, as for any other
    blind watch; once the config names a feed it is cleared."""
    with store.transaction():
        if watches_nothing(config):
            # Blind from the start, and nothing can bring it back by itself: a permanent
            # failure has no grace period (stale_after is for a feed that may recover), so
            # status says NOT WATCHED and the contacts are told at the first supervision tick.
            store.feed_failed(NOTHING_FEED, NOTHING_WATCHED, now, permanent=True)
        elif store.feed_failing(NOTHING_FEED) is not None:
            store.feed_ok(NOTHING_FEED, now)
