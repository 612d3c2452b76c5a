"""What comes back: reading the sending mailbox, classifying bounces and complaints,
and keeping the suppression list clean.

May import: common, content, domain, mail, members, records, signin.
"""
