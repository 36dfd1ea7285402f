"""Is the watch working? Feed health and blind-watch alerts, the heartbeat, the failsafe
when the store or the channels fail, and the status report."""
