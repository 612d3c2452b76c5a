"""UTM tags on links, in both parts; never on mailto or on links that already carry utm_."""

from __future__ import annotations

import re
from dataclasses import replace

from newsletter.common.config import Settings
from newsletter.content.linktags import LinkTagger
from newsletter.web.preview import render_path


def test_tagger_rules() -> None:
    tag = LinkTagger.for_issue(
        "december-2023", source="newsletter", medium="email", campaign="{slug}"
    ).tag
    assert tag("https://www.wmgrowth.com/") == (
        "https://www.wmgrowth.com/?utm_source=newsletter&utm_medium=email&utm_campaign=december-2023"
    )
    assert tag("https://x.org/p?a=1#top") == (
        "https://x.org/p?a=1&utm_source=newsletter&utm_medium=email&utm_campaign=december-2023#top"
    )
    assert tag("https://x.org/?utm_source=partner") == "https://x.org/?utm_source=partner"
    assert tag("mailto:david@wmhtc.co.uk") == "mailto:david@wmhtc.co.uk"
    assert LinkTagger.off().tag("https://x.org/") == "https://x.org/"


def test_both_parts_tagged_when_enabled(settings: Settings) -> None:
    tagged = replace(settings, utm=True, utm_campaign="dec-{slug}")
    _, html, text = render_path(tagged, settings.issues_dir / "december-2023.md").sample()
    hrefs = re.findall(r'href="([^"]+)"', html)
    web = [h for h in hrefs if h.startswith("https://")]
    assert web and all("utm_campaign=dec-december-2023" in h for h in web)
    assert all("utm_" not in h for h in hrefs if h.startswith("mailto:"))
    assert "https://www.centreforcities.org/?utm_source=newsletter&amp;utm_medium=email" in html
    assert (
        "https://www.centreforcities.org/?utm_source=newsletter&utm_medium=email&utm_campaign=dec-december-2023"
        in text
    )
    _, plain_html, _ = render_path(settings, settings.issues_dir / "december-2023.md").sample()
    assert "utm_" not in plain_html
