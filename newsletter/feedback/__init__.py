"""What comes back: reading the sending mailbox, classifying bounces and complaints
(``classify``, ``bounces``), deciding what to do about each address, typed (``actions``),
and keeping the suppression list clean (``run``: the feedback command).

May import: common, content, domain, mail, members, records, signin.
"""
