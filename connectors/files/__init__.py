"""Readers of files, not live feeds: replay files and Telegram chat exports."""
