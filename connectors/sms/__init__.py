"""SMS through SMS Gateway for Android on a contact's phone (docs/sms.md)."""
