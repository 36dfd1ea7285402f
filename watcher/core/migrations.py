"""The database's schema, as the ordered list of steps that build it.

Append-only: the store runs, in one transaction each, the steps a database has not had yet
(its `PRAGMA user_version` counts them), so every watcher upgrades an older database in
place and never changes a step that has already run somewhere.
"""

from __future__ import annotations

from watcher.core import evidence

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE seen_events (key TEXT PRIMARY KEY, feed TEXT NOT NULL, at TEXT NOT NULL,
                              seen_at TEXT NOT NULL);
    CREATE INDEX seen_events_seen_at ON seen_events(seen_at);
    CREATE TABLE cursors (feed TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE incidents (id INTEGER PRIMARY KEY, code TEXT NOT NULL, person TEXT NOT NULL,
                            state TEXT NOT NULL, drill INTEGER NOT NULL DEFAULT 0,
                            opened_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                            event_key TEXT, platform TEXT, link TEXT, matched TEXT NOT NULL,
                            event_at TEXT,
                            acked_by TEXT, acked_at TEXT);
    CREATE TABLE matches (id INTEGER PRIMARY KEY, incident_id INTEGER REFERENCES incidents(id),
                          code TEXT NOT NULL, event_key TEXT NOT NULL, at TEXT NOT NULL,
                          evidence TEXT NOT NULL);
    CREATE TABLE runs (incident_id INTEGER PRIMARY KEY REFERENCES incidents(id),
                       playbook TEXT NOT NULL, step INTEGER NOT NULL, due_at TEXT NOT NULL,
                       waiting INTEGER NOT NULL DEFAULT 0, repeats TEXT NOT NULL DEFAULT '{}',
                       status TEXT NOT NULL);
    CREATE INDEX runs_due ON runs(status, due_at);
    CREATE TABLE outbox (id INTEGER PRIMARY KEY, incident_id INTEGER, contact TEXT NOT NULL,
                         channel TEXT NOT NULL, address TEXT NOT NULL, text TEXT NOT NULL,
                         status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                         next_try_at TEXT NOT NULL, created_at TEXT NOT NULL, sent_at TEXT,
                         error TEXT);
    CREATE INDEX outbox_due ON outbox(status, next_try_at);
    CREATE TABLE health (feed TEXT PRIMARY KEY, last_ok TEXT, last_event TEXT,
                         failures INTEGER NOT NULL DEFAULT 0, blind_since TEXT, detail TEXT);
    """,
    """
    ALTER TABLE matches ADD COLUMN person TEXT;
    CREATE INDEX matches_code ON matches(code, person, at);
    ALTER TABLE outbox ADD COLUMN platform_ref TEXT;
    ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'alert';
    CREATE INDEX outbox_ref ON outbox(channel, platform_ref);
    CREATE TABLE notices (id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL, kind TEXT NOT NULL,
                          actor TEXT, created_at TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX notices_pending ON notices(done, id);
    """,
    evidence.SCHEMA,
    """
    CREATE TABLE image_cache (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # i13-guard: every chat, group and address where a watched person has been seen, so
    # that nothing is ever sent there (playbooks/guard.py); kept for good, never purged.
    """
    CREATE TABLE places (platform TEXT NOT NULL, place TEXT NOT NULL, person TEXT NOT NULL,
                         first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
                         PRIMARY KEY (platform, place, person));
    """,
    # i12-access: a lost access (bot removed, device unlinked, account deactivated) is blind
    # at once, without the stale_after grace a passing outage gets: the row remembers it.
    """
    ALTER TABLE health ADD COLUMN permanent INTEGER NOT NULL DEFAULT 0;
    """,
    # i12-core: items that could not be checked, kept to tell the person's contacts.
    """
    CREATE TABLE unchecked (id INTEGER PRIMARY KEY, event_key TEXT NOT NULL UNIQUE,
                            feed TEXT NOT NULL, person TEXT NOT NULL, platform TEXT NOT NULL,
                            at TEXT NOT NULL, link TEXT, reason TEXT NOT NULL,
                            created_at TEXT NOT NULL, notified INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX unchecked_pending ON unchecked(notified, person);
    """,
    # i14-web: the contacts' secret links (watcher/core/secret_links.py), only as SHA-256 hashes;
    # scope "contact" (the whole page) or "incident:N" (one alert, from an alert's link).
    """
    CREATE TABLE web_tokens (hash TEXT PRIMARY KEY, contact TEXT NOT NULL, scope TEXT NOT NULL,
                             created_at TEXT NOT NULL, revoked_at TEXT);
    CREATE INDEX web_tokens_contact ON web_tokens(contact, revoked_at);
    """,
    # i17-store: the watcher's own bookkeeping moments (last digest, a blind watch told...)
    # get their own table, out of `cursors`, which keeps feed positions and the connectors'
    # durable state only. The rows move, so an upgraded watcher neither re-sends a digest nor
    # repeats a reminder; a cleared blind mark ("") is simply no mark. See Mark.
    """
    CREATE TABLE marks (name TEXT NOT NULL, key TEXT NOT NULL, at TEXT NOT NULL,
                        PRIMARY KEY (name, key));
    INSERT INTO marks (name, key, at)
        SELECT CASE feed WHEN 'retention:last' THEN 'retention'
                         WHEN 'digest:last' THEN 'digest' ELSE 'probe' END, '', value
        FROM cursors WHERE feed IN ('retention:last', 'digest:last', 'watcher:probe')
                     AND value <> '';
    INSERT INTO marks (name, key, at)
        SELECT 'unchecked', substr(feed, length('unchecked:last:') + 1), value
        FROM cursors WHERE substr(feed, 1, length('unchecked:last:')) = 'unchecked:last:'
                     AND value <> '';
    INSERT INTO marks (name, key, at)
        SELECT substr(feed, 1, instr(feed, ':') - 1), substr(feed, instr(feed, ':') + 1), value
        FROM cursors WHERE substr(feed, 1, instr(feed, ':') - 1)
                           IN ('blind', 'checkin', 'crashloop', 'drill-reminder')
                     AND value <> '';
    DELETE FROM cursors WHERE feed IN ('retention:last', 'digest:last', 'watcher:probe')
        OR substr(feed, 1, length('unchecked:last:')) = 'unchecked:last:'
        OR substr(feed, 1, instr(feed, ':') - 1)
           IN ('blind', 'checkin', 'crashloop', 'drill-reminder');
    """,
)
