"""Whether members' servers will take the mail as ours: the offline set-up checks
(settings, the SMTP sign-in) and the sending domain's DNS (MX, SPF, DKIM, DMARC,
alignment), each a typed finding with the record or setting that fixes it.

May import: common, content, mail, members, signin.
"""
