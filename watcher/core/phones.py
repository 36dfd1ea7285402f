"""Phone numbers in one form (E.164), read with the `phonenumbers` library.

A core helper (no machinery): the config checks and the SMS connector must agree on what
"the same number" means. The network may give a sender in local form ("07700 900001"), so
a number is read with a default region (an ISO country code such as "GB").
"""

from __future__ import annotations

import phonenumbers


def e164(text: str, region: str | None = None) -> str | None:
    """"+447700900001" for any way of writing that number, or None when the text is not a
    possible phone number (an alphanumeric sender name, garbage, a local number without a
    region)."""
    if not text or len(text) > 64:  # phonenumbers refuses long input anyway; say so here
        return None
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
