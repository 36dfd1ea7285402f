"""The `watcher` command: a thin layer that turns the library's typed errors into one line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from connectors.files.telegram_export import ExportFormatError
from detectors.codes import build_detectors
from playbooks.channels import addresses
from watcher import init
from watcher.app import App
from watcher.commands import drill, dry_run, operator_action
from watcher.core import anchor, evidence, logs
from watcher.core import config as config_module
from watcher.core import secret_links as web_auth
from watcher.core.clock import utcnow
from watcher.core.config import Config, ConfigError, parse_duration
from watcher.core.errors import WatcherError
from watcher.core.models import parse_time
from watcher.core.store import Store
from watcher.engine.audit import audit as run_audit
from watcher.engine.audit import report as audit_report
from watcher.lock import AlreadyRunning, ProcessLock
from watcher.ordinary import ordinary_text_warnings
from watcher.supervision.status import status_data, status_report
from watcher.supervision.supervisor import Supervisor
from watcher.supervision.watching import (
    NOTHING_WATCHED,
    person_lines,
    record_nothing_watched,
    watches_nothing,
)

EXIT_BAD_INPUT = 2
EXIT_RUNTIME = 1
EXIT_NOT_ACKNOWLEDGED = 3  # a drill that nobody acknowledged (for cron)
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a reader that stopped early expects


class UsageError(WatcherError):
    """Bad input from the user: one line on stderr, non-zero exit, never a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watcher", description="A silent alarm: watches feeds for agreed duress codes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="watch until stopped (SIGINT/SIGTERM stop it cleanly)",
                         description="Watch the configured feeds and run playbooks until "
                                     "stopped.")
    run.add_argument("--config", required=True, type=Path, help="the TOML config file")
    run.add_argument("--once", action="store_true",
                     help="process what is available, run the steps that are due, and exit")
    run.add_argument("--database", type=Path,
                     help="use this database instead of [watcher] database")
    run.add_argument("-v", "--verbose", action="store_true", help="log more detail")

    drill = sub.add_parser(
        "drill", help="run a code's whole playbook as a drill and report who acknowledged",
        description="Run a code's whole playbook with every message marked as a drill, wait "
                    "until someone acknowledges or the playbook ends (its last step done and "
                    "every message delivered), and print a report. If a watcher is running on "
                    "the same database, it runs the drill.",
        epilog="Exit status: 0 someone acknowledged; 3 nobody acknowledged (the playbook "
               "ended, or --timeout); 2 bad input; 1 the database cannot be used.")
    drill.add_argument("--config", required=True, type=Path, help="the TOML config file")
    drill.add_argument("code", help="the code to drill (a key of [codes])")
    drill.add_argument("--timeout", default="15m",
                       help="stop waiting after this long (default 15m); the report says so")
    drill.add_argument("--database", type=Path,
                       help="use this database instead of [watcher] database")

    audit = sub.add_parser(
        "audit", help="how often each code would have fired on past messages (writes nothing)",
        description="Run every code over a person's past messages (event files in the replay "
                    "format, or a Telegram Desktop chat export result.json) and report how "
                    "often each would have fired. Runs no playbook and writes nothing.")
    audit.add_argument("--config", required=True, type=Path, help="the TOML config file")
    audit.add_argument("history", nargs="+", type=Path,
                       help="event files (.jsonl) or Telegram Desktop exports (result.json)")
    audit.add_argument("--person", help="whose history this is (default: matched by "
                       "Telegram user id, or the only person in the config)")
    audit.add_argument("--json", action="store_true", help="print the result as JSON")

    status = sub.add_parser(
        "status", help="every feed's health, open alerts, pending steps, last drills",
        description="Show every feed's health, open alerts, pending steps and last drills.")
    status.add_argument("--config", required=True, type=Path, help="the TOML config file")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.add_argument("--database", type=Path,
                        help="use this database instead of [watcher] database")

    evidence = sub.add_parser(
        "evidence", help="verify or export the hash-chained evidence log",
        description="The evidence log: every match, alert, delivery, acknowledgement, drill "
                    "and blind watch, hash-chained so that any change can be detected.")
    ev_sub = evidence.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = ev_sub.add_parser("verify", help="prove the chain is intact or name the first "
                               "broken entry")
    verify.add_argument("--config", required=True, type=Path, help="the TOML config file")
    verify.add_argument("--database", type=Path, help="use this database instead")
    verify.add_argument("--expect", action="append", default=[], metavar="ENTRY:FINGERPRINT",
                        help="a fingerprint from a digest a contact kept (repeatable): the "
                             "log must still hold that entry unchanged")
    export = ev_sub.add_parser("export", help="write a printable (html) or machine-readable "
                               "(jsonl) timeline")
    export.add_argument("--config", required=True, type=Path, help="the TOML config file")
    export.add_argument("--format", required=True, choices=["html", "jsonl"])
    export.add_argument("--out", required=True, type=Path,
                        help="the file to write (created 0600; an existing file is refused)")
    export.add_argument("--from", dest="start", help="from this date/time (ISO, UTC)")
    export.add_argument("--to", dest="end", help="up to this date/time (ISO, UTC)")
    export.add_argument("--database", type=Path, help="use this database instead")

    init = sub.add_parser(
        "init", help="answer a few questions and get a commented config (written 0600)",
        description="Ask who is watched, on which platforms, who is alerted and the first "
                    "code, and write a commented config readable by you only.")
    init.add_argument("--out", type=Path, default=Path("watcher.toml"),
                      help="the config file to write (default watcher.toml; never overwritten)")

    check = sub.add_parser("check", help="validate the config and print what it would watch",
                           description="Validate the config and print what it would watch.")
    check.add_argument("--config", required=True, type=Path, help="the TOML config file")
    check.add_argument("--database", type=Path,
                       help="the database `run --database` will use (printed as the one used)")

    for name, verb in (("ack", "acknowledge"), ("standdown", "stand down")):
        act = sub.add_parser(
            name, help=f"{verb} an alert as the operator at this machine",
            description=f"{verb.capitalize()} alert N as the operator (recorded as \"operator\" "
                        "in the evidence log; the contacts alerted are told). If a watcher is "
                        "running on the same database, it tells them; otherwise this command "
                        "does, then exits.",
            epilog="Exit status: 0 done (or already handled); 2 no such alert, or it has "
                   "already ended; 1 the database cannot be used.")
        act.add_argument("--config", required=True, type=Path, help="the TOML config file")
        act.add_argument("incident", type=_incident_number, help="the alert's number (#N)")
        act.add_argument("--timeout", default="2m",
                         help="with no watcher running, wait this long for the messages to "
                              "go out (default 2m); the rest go with the next `watcher run`")
        act.add_argument("--database", type=Path,
                         help="use this database instead of [watcher] database")

    webcmd = sub.add_parser(
        "web", help="the contacts' page: print or revoke a contact's secret link",
        description="Each contact opens the contacts' page with a personal secret link. "
                    "`link` prints a new one (earlier links keep working until revoked); "
                    "`revoke` ends every link of the contact, and the sessions opened with "
                    "them, including the links their alerts carried.")
    web_sub = webcmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("link", "print a new secret link for a contact"),
                       ("revoke", "end every link of a contact")):
        one = web_sub.add_parser(name, help=text, description=text.capitalize() + ".")
        one.add_argument("--config", required=True, type=Path, help="the TOML config file")
        one.add_argument("contact", help="the contact (a key of [contacts])")
        one.add_argument("--database", type=Path,
                         help="use this database instead of [watcher] database")

    replay = sub.add_parser(
        "replay", help="run events through the detectors only (no playbook, no database)",
        description="Run a JSON-lines event file through the detectors. Runs no playbook and "
                    "touches no database. Exit 0 whether or not anything matched.")
    replay.add_argument("--config", required=True, type=Path, help="the TOML config file")
    replay.add_argument("events", type=Path, help="a JSON-lines event file")
    replay.add_argument("--json", action="store_true",
                        help="print one JSON object per match and nothing else on stdout")
    return parser


def _incident_number(text: str) -> int:
    value = text.strip().lstrip("#")
    if not value.isdigit() or len(value) > 12:
        raise argparse.ArgumentTypeError(f"{text!r} is not an alert number (write it like 3)")
    return int(value)


def _load(path: Path, secrets: bool = True) -> Config:
    """Commands that talk to no platform load without its secrets (secrets=False)."""
    config = config_module.load(path, secrets=secrets)
    logs.ensure(config)  # every command's log lines are masked, not only run's
    return config


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    _, warnings = build_detectors(config)
    print(f"Config OK: {config.path}")
    print(f"Database: {args.database.resolve() if args.database else config.database}")
    for key, person in config.people.items():
        print(f"Person {key} ({person.name})")
        # What `run` will read (supervision's expected feeds), not a guess per platform.
        for line in person_lines(config, key):
            print(line)
    for key, code in config.codes.items():
        kind = code.detector_kinds()[0]
        print(f"Code {key}: {kind} code for {code.person}, playbook {code.playbook}")
    for key, contact in config.contacts.items():
        channels = ", ".join(sorted({c for c, _ in addresses(config, key)}))
        print(f"Contact {key} ({contact.name}): reached by {channels}")
    if config.connectors.replay:
        for name in config.connectors.replay.files:
            print(f"Replay file: {config.resolve(name)}")
    for warning in warnings + ordinary_text_warnings(config):
        print(f"warning: {warning}")
    if watches_nothing(config):
        print(f"warning: NOTHING IS WATCHED: {NOTHING_WATCHED}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    config = _load(args.config, secrets=False)
    detectors, warnings = build_detectors(config)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not args.events.is_file():
        raise UsageError(f"{args.events}: event file not found")
    bad = 0
    for result in dry_run(config, detectors, args.events):
        if result.error is not None:
            print(f"error: {result.error}", file=sys.stderr)
            bad += 1
            continue
        for failure in result.failures:
            print(f"error: {args.events}:{result.line}: detection failed: {failure}",
                  file=sys.stderr)
        for match in result.matches:
            if args.json:
                print(json.dumps({"code": match.code, "event": match.event_id,
                                  "person": match.person, "platform": match.platform,
                                  "at": match.at.isoformat(), "line": result.line,
                                  "evidence": dict(match.evidence)}, ensure_ascii=False))
            else:
                print(f"line {result.line}: code {match.code} matched event {match.event_id} "
                      f"({match.person}, {match.platform})")
    return EXIT_BAD_INPUT if bad else 0



def cmd_audit(args: argparse.Namespace) -> int:
    config = _load(args.config, secrets=False)
    if args.person is not None and args.person not in config.people:
        raise UsageError(f'no person "{args.person}"; known people: '
                         f'{", ".join(sorted(config.people))}')
    for path in args.history:
        if not path.is_file():
            raise UsageError(f"{path}: history file not found")
    detectors, _ = build_detectors(config)
    try:
        result = run_audit(config, detectors, args.history, args.person)
    except ExportFormatError as exc:
        raise UsageError(str(exc)) from None
    for problem in result.problems + result.failures:
        print(f"error: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps({"events": result.events, "codes": {
            name: [{"event": e, "matched": s} for e, s in code.fired]
            for name, code in result.codes.items()}}, ensure_ascii=False))
    else:
        print(audit_report(result))
    return EXIT_BAD_INPUT if result.problems else 0


def _existing_store(config: Config, database: Path | None) -> Store:
    path = database or config.database
    if not path.exists():
        raise UsageError(f"{path}: no database yet; it is created by `watcher run`")
    return Store(path)


def cmd_status(args: argparse.Namespace) -> int:
    config = _load(args.config, secrets=False)
    store = _existing_store(config, args.database)
    try:
        supervisor = Supervisor(config, store)
        if args.json:
            print(json.dumps(status_data(config, store, supervisor), ensure_ascii=False))
        else:
            print(status_report(config, store, supervisor))
    finally:
        store.close()
    return 0


def _when(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise UsageError(f"{flag}: not a date; write it like 2026-11-22 or "
                         "2026-11-22T14:00") from None


def _expected(values: Sequence[str]) -> list[tuple[int, str]]:
    out = []
    for value in values:
        seq, _, prefix = value.partition(":")
        if not seq.isdigit() or len(prefix) < 8 or any(c not in "0123456789abcdefABCDEF"
                                                        for c in prefix):
            raise UsageError(f"--expect {value}: write it as in the digest, like "
                             "42:3fa2b1c0d4e5f6a7")
        out.append((int(seq), prefix))
    return out


def cmd_evidence(args: argparse.Namespace) -> int:
    config = _load(args.config, secrets=False)
    expect = _expected(args.expect) if args.action == "verify" else []
    database = args.database or config.database
    store = _existing_store(config, args.database)
    try:
        key = anchor.load_key(config.resolve(config.watcher.evidence_key), create=False)
        verdict = store.evidence_check(anchor.anchor_path(database), key, expect)
        if args.action == "verify":
            proven, text = evidence.report(verdict)
            print(text)
            return 0 if proven else EXIT_RUNTIME
        items = store.evidence_entries(_when(args.start, "--from"), _when(args.end, "--to"))
        if args.format == "jsonl":
            text = evidence.to_jsonl(items)
        else:
            names = ", ".join(p.name for p in config.people.values())
            text = evidence.to_html(items, f"Evidence log: {names}", verdict.chain,
                                    verdict.proof)
        write_private(args.out, text)
        print(f"Wrote {args.out}")
    except evidence.EvidenceMissing as exc:
        raise UsageError(str(exc)) from None
    except anchor.AnchorKeyError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()
    return 0


def write_private(path: Path, text: str) -> None:
    """Exports hold sensitive evidence: a new file, readable by its owner only.

    Created with O_EXCL, which also refuses a symlink planted at `path`: an existing file or
    link is never written through, truncated or left with its old permissions.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists; choose another --out (an export never replaces a "
                         "file)") from None
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def cmd_init(args: argparse.Namespace) -> int:
    if args.out.exists():
        raise UsageError(f"{args.out} exists; choose another --out (it is never overwritten)")
    try:
        answers = init.interview(input)
    except (EOFError, KeyboardInterrupt):
        raise UsageError("stopped before the end; nothing was written") from None
    try:  # i14-web: Apprise URLs (they may hold passwords) go to files beside the config
        secrets_written = init.write_secrets(args.out.resolve().parent, answers)
    except FileExistsError as exc:
        raise UsageError(f"{exc.filename} exists; move it away (it is never overwritten)"
                         ) from None
    init.write_config(args.out, init.render(answers))
    for path in secrets_written:
        print(f"Wrote {path} (an Apprise URL, readable by you only)")
    print(f"Wrote {args.out} (readable by you only). Next: watcher check --config {args.out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    logs.setup_for(config, args.verbose)
    database = args.database or config.database
    lock = ProcessLock(database)
    if not lock.acquire():
        raise AlreadyRunning(f"another watcher is already running on {database}")
    app = App(config, database=args.database)
    log = logging.getLogger("watcher")
    for warning in app.warnings + ordinary_text_warnings(config):
        log.warning("%s", warning)
    if watches_nothing(config):
        # Not refused: a watcher that is not running tells nobody. Running, it keeps the
        # blind watch that status shows and the contacts are told about.
        log.error("NOTHING IS WATCHED: %s", NOTHING_WATCHED)
    record_nothing_watched(app.store, config, utcnow())

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await app.run(once=args.once, stop=stop)

    async def guarded() -> None:
        try:
            await main()
        finally:
            await app.aclose()

    try:
        asyncio.run(guarded())
    finally:
        lock.release()
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    config = _load(args.config)
    logs.setup_for(config, False)
    if args.code not in config.codes:
        raise UsageError(f'no code "{args.code}"; known codes: {", ".join(sorted(config.codes))}')
    if config.codes[args.code].playbook is None:
        raise UsageError(f"code {args.code} has no playbook to drill")
    try:
        timeout = parse_duration(args.timeout).total_seconds()
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    database = args.database or config.database
    lock = ProcessLock(database)
    here = lock.acquire()
    try:
        text, acknowledged = asyncio.run(drill(config, database, args.code, timeout, here))
    finally:
        lock.release()
    print(text)
    return 0 if acknowledged else EXIT_NOT_ACKNOWLEDGED


def cmd_act(args: argparse.Namespace) -> int:
    """`watcher ack N` / `watcher standdown N`, as the operator."""
    config = _load(args.config)
    logs.setup(False, config.secrets.values())
    try:
        timeout = parse_duration(args.timeout).total_seconds()
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    database = args.database or config.database
    if not database.exists():
        raise UsageError(f"{database}: no database yet; it is created by `watcher run`")
    lock = ProcessLock(database)
    here = lock.acquire()
    try:
        result = asyncio.run(operator_action(config, database, args.command, args.incident,
                                             timeout, here, announce=print))
    finally:
        lock.release()
    if result.refused:
        return EXIT_BAD_INPUT
    if result.delivered_by == "watcher":
        print("A watcher is running on this database: it tells the contacts.")
    elif result.waiting:
        print(f"{result.waiting} message(s) could not be sent yet; the next `watcher run` sends "
              "them.")
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    config = _load(args.config, secrets=False)
    if config.web is None:
        raise UsageError("the contacts' page is not configured: add a [web] section to the "
                         "config (see docs/web.md)")
    if args.contact not in config.contacts:
        raise UsageError(f'no contact "{args.contact}"; known contacts: '
                         f'{", ".join(sorted(config.contacts))}')
    store = Store(args.database or config.database)
    try:
        with store.transaction():
            if args.action == "revoke":
                count = store.revoke_web_tokens(args.contact, utcnow())
                print(f"Revoked {count} link(s) of {config.contacts[args.contact].name}; "
                      "their open pages are closed too.")
                return 0
            token = web_auth.mint(store, args.contact, web_auth.CONTACT, utcnow())
    finally:
        store.close()
    base = config.web.public_url or f"http://{config.web.listen}"
    print(web_auth.link(base, token))
    if config.web.public_url is None:
        print("(no [web] public_url: this link works only on this machine)", file=sys.stderr)
    return 0


COMMANDS = {"run": cmd_run, "check": cmd_check, "replay": cmd_replay, "drill": cmd_drill,
            "audit": cmd_audit, "status": cmd_status, "evidence": cmd_evidence,
            "init": cmd_init, "ack": cmd_act, "standdown": cmd_act,
            "web": cmd_web}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        return code
    except BrokenPipeError:
        # `watcher status | head`: the reader has all it wanted. Exit quietly, and point
        # stdout at /dev/null so that the interpreter's last flush finds no pipe either.
        # Not for `run`: a watcher that stops must say why.
        if args.command == "run":
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except ConfigError as exc:  # and CodeLoadError: every problem, each on its own line
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except WatcherError as exc:  # the one base: one clear line, never a traceback
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(exc, UsageError) else EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
