"""Pages for looking at: the rendered preview, the local preview server, and the web
archive with its feed.

May import: common, content, domain, feedback, mail, members, records, sending, signin.
"""
