"""The watch itself: events in, detectors run, incidents out (one transaction per event).

Also the rules, check-in deadlines, items that could not be checked, and the audit of a
history through the same detectors.
"""
