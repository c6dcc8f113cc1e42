"""The campaign's body as safe HTML: text escaped, links kept, images, a call to action."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from gateway import PublishRequest

# A bare http(s) URL in the text; trailing punctuation belongs to the sentence, not the URL.
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)"
DEFAULT_CTA = "Read more"


def _linked(text: str) -> str:
    """Escape ``text``, turning the URLs in it into links (their text escaped too)."""
    out, last = [], 0
    for match in _URL.finditer(text):
        url = match.group(0)
        trimmed = url.rstrip(_TRAILING)
        start, end = match.start(), match.start() + len(trimmed)
        out.append(escape(text[last:start]))
        out.append(f'<a href="{escape(trimmed, quote=True)}">{escape(trimmed)}</a>')
        last = end
    out.append(escape(text[last:]))
    return "".join(out)


def paragraphs(text: str) -> str:
    """Blank lines separate paragraphs; single line breaks are kept as ``<br>``."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    return "".join(
        "<p>" + "<br>\n".join(_linked(line) for line in block.split("\n")) + "</p>\n"
        for block in blocks
    )


def images(urls: tuple[str, ...]) -> str:
    return "".join(
        f'<p><img src="{escape(url, quote=True)}" alt="" style="max-width:100%;height:auto"></p>\n'
        for url in urls
    )


def call_to_action(link: str, label: str) -> str:
    return (
        f'<p><a href="{escape(link, quote=True)}" style="display:inline-block;padding:12px 24px;'
        f'background:#007c89;color:#ffffff;text-decoration:none;border-radius:4px">'
        f"{escape(label)}</a></p>\n"
    )


def body_html(request: PublishRequest) -> str:
    """The body, the images and the link's button, in that order."""
    parts = [paragraphs(request.body or ""), images(request.media_urls)]
    if request.link:
        parts.append(
            call_to_action(request.link, str(request.options.get("ctaText") or DEFAULT_CTA))
        )
    return "".join(parts)


def document(request: PublishRequest) -> str:
    """A whole email: Mailchimp adds its footer (address, unsubscribe link) when it sends."""
    title = escape(request.title or "")
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body>\n{body_html(request)}</body></html>\n"
    )


def campaign_content(request: PublishRequest) -> dict[str, Any]:
    """The ``PUT /campaigns/{id}/content`` body: plain HTML, or a template with its sections.

    With ``options.templateId`` each of ``options.sections`` is text, rendered as the body is;
    the request's body (with images and button) fills the ``body`` section unless given.
    """
    template_id = request.options.get("templateId")
    if template_id is None:
        return {"html": document(request)}
    sections = {
        str(name): paragraphs(str(text))
        for name, text in (request.options.get("sections") or {}).items()
    }
    if "body" not in sections and (request.body or request.media_urls or request.link):
        sections["body"] = body_html(request)
    return {"template": {"id": int(template_id), "sections": sections}}
