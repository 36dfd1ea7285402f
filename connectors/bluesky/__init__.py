"""Bluesky, through atproto: the connector and its parts."""
