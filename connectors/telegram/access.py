"""What the bot may see in a watched chat, and what to tell the contacts when that changes.

Pure functions over PTB objects: the connector asks Telegram (getChatMember at start and every
`access_check_interval`) and listens for `my_chat_member` updates (Telegram sends one the
moment the bot is removed, banned, demoted or restricted); both end here, so a removal reads
the same whichever way it was noticed. Each text says what happened and what to do; none
carries message text (only the chat's title and id, which the contacts need to act).
"""

from __future__ import annotations

from telegram import Chat, ChatFullInfo, ChatMemberUpdated

# Statuses with which the bot sees everything it needs (reactions need admin rights; so do
# messages when privacy mode is on).
SEES_ALL = frozenset({"administrator", "creator"})
CAREFUL = ("Talk to the survivor safely first: whoever removed it may have noticed the bot.")


def chat_name(chat: Chat | ChatFullInfo | None, chat_id: int) -> str:
    title = (chat.title or chat.username) if chat is not None else None
    return f"{title} ({chat_id})" if title else str(chat_id)


def status_problem(status: str, name: str) -> str | None:
    """None when `status` lets the bot see the chat; else what is wrong and what to do."""
    if status in SEES_ALL:
        return None
    if status in ("left", "kicked"):
        verb = "banned from" if status == "kicked" else "removed from"
        return (f"the bot was {verb} {name}: nothing posted there is seen. What to do: add "
                "the bot back to that chat as an administrator (it needs no rights); if it "
                "was banned, first remove it from the chat's Removed users. " + CAREFUL)
    return (f"the bot is not an admin in {name} (it is {status}), so it cannot see reactions "
            "there (nor any message, if privacy mode is on). What to do: in that chat open "
            "Manage / Administrators and add the bot as administrator again (it needs no "
            "rights). " + CAREFUL)


def unreachable_problem(name: str, why: str) -> str:
    """getChat/getChatMember refused (chat deleted, bot kicked before we looked)."""
    return (f"the bot cannot see chat {name} ({why}): the chat may have been deleted or the bot "
            "removed. What to do: add the bot to it as an administrator, or remove the id "
            "from connectors.telegram.chats / people.*.telegram.channels. " + CAREFUL)


def migrated_problem(old: int, new: int, name: str) -> str:
    """A group became a supergroup: Telegram gave it a new id for good.

    Not followed automatically: the config is what the contacts agreed and checked (which
    ids are watched, never written to, rights checked), and a config still naming the old
    id would fail at the next restart; a person updates it once, and the watch is whole."""
    return (f"the group {name} was upgraded to a supergroup and now has the id {new}: the "
            f"watcher still knows it as {old}. What to do: replace {old} with {new} in "
            "connectors.telegram.chats (or people.*.telegram.channels), check that the bot "
            "is still an administrator there, and restart the watcher")


def anonymous_problem(person: str, name: str) -> str:
    """A watched person who is an anonymous admin: Telegram shows their posts as the group's
    own (from @GroupAnonymousBot, sender_chat the group), like every other anonymous
    admin's, so they cannot be attributed to them (docs/telegram.md)."""
    return (f"{person} is an anonymous administrator in {name}: Telegram shows their messages "
            "there as the group's own, the same as every other anonymous admin's, so the "
            f"watcher cannot tell they are {person}'s and a code sent there will not fire. "
            f"What to do: agree with {person}, safely, to turn off Remain anonymous in their "
            "admin rights there, or to use their codes elsewhere")


def membership_change(change: ChatMemberUpdated) -> tuple[int, str | None]:
    """The chat a my_chat_member update is about, and its problem (None: access is back)."""
    chat = change.chat
    return chat.id, status_problem(change.new_chat_member.status, chat_name(chat, chat.id))
