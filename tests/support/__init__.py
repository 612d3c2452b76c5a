"""Support code for the tests, imported as ``support.<module>`` (tests/ is on sys.path):
real servers on 127.0.0.1 (``smtp_servers``: aiosmtpd; ``raw_smtp``: scripted sockets;
``pipelining_servers``: aiosmtpd offering PIPELINING, scripted, and a recording relay;
``dovecot``: a private Dovecot; ``oauth_server``: an Authlib authorisation server), headless
Chromium (``browser``), project folders (``projects``), pictures made by Pillow
(``images_data``), the mail that comes back after a bulletin (``feedback_mail``), a DNS
server with good and broken sending domains (``dns_server``: dnslib), an in-memory keyring
(``memory_keyring``), and small helpers (``helpers``: the CLI in-process, a fake clock, settings and environments).

The fixtures that start these live in tests/conftest.py (and tests/signin/conftest.py)."""
