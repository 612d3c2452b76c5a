"""What the chair wrote and how it looks: issue files, front matter, the content model,
pictures, the organisation's details, and the rendering to HTML and plain text.

May import: common.
"""
