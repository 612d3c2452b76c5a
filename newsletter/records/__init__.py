"""What the program remembers in SQLite: the send journal (exactly-once; ``schema``: its
tables) and the feedback log.

May import: common, content, mail, members, signin.
"""
