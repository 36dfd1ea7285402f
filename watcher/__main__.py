"""`python -m watcher ...` is the `watcher` command."""

from watcher.cli import main

raise SystemExit(main())
