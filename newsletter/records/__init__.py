"""What the program remembers in SQLite: the send journal (exactly-once) and the
feedback log.

May import: common, content, mail, members, signin.
"""
