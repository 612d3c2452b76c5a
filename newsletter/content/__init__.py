"""What the chair wrote and how it looks: issue files, front matter, the content model,
pictures, the organisation's details, and the rendering to HTML (``render``; ``emailhtml``:
from the generated MJML to the email's HTML, CSS inlined) and plain text.

May import: common.
"""
