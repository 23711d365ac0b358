"""/chat inside a customer's page: the full-page snippet, framing limited to the
allowlist, and postMessage accepted only from the allowed parent window."""

from __future__ import annotations

import pytest
from django.db import transaction
from playwright.sync_api import expect

from conversations.models import MessageDraft, Session
from tests.browser.support import ChatUI, customer_page, in_db_thread

pytestmark = pytest.mark.browser


def widget_session() -> str:
    session = Session.objects.create(source="widget")
    with transaction.atomic():
        session.append_messages(
            [
                MessageDraft(role="user", content="Which tent for two?", channel="widget"),
                MessageDraft(role="assistant", content="The **Ridgeline 2P**.", channel="widget"),
            ]
        )
    return session.public_id


def message_count(session_id: str) -> int:
    return Session.objects.get(public_id=session_id).messages.count()


def test_the_full_page_snippet_shows_and_continues_a_conversation_on_the_customer_site(
    new_page, live_server, customer_site
):
    api = live_server.url
    session_id = in_db_thread(widget_session)
    snippet = f'<script src="{api}/static/widget/frame.js" data-api-base="{api}" defer></script>'
    url = customer_site.serve("/chatbot", customer_page(snippet, title="Our chatbot page", css=""))
    page = new_page()

    page.goto(f"{url}?session={session_id}")
    frame = page.frame_locator("iframe.chatbot-frame")
    chat = ChatUI(frame)
    expect(frame.get_by_text("Conversation continued from widget")).to_be_visible()
    assert chat.transcript() == [("user", "Which tent for two?"), ("assistant", "The Ridgeline 2P.")]

    chat.send("And for three people?", replies_after=2)
    assert "I can see 2 earlier messages" in chat.transcript()[-1][1]
    assert in_db_thread(lambda: message_count(session_id)) == 4
    assert page.url == f"{url}?session={session_id}"

    # A new conversation in the frame becomes the one this page's address continues.
    chat.button("New conversation").click()
    page.wait_for_function("() => !location.search.includes('session=')")
    chat.send("A fresh start", replies_after=1)
    page.wait_for_function("() => location.search.includes('session=')")
    new_id = page.evaluate("() => new URLSearchParams(location.search).get('session')")
    assert new_id != session_id
    page.reload()
    chat.wait_for_replies(1)
    assert chat.transcript()[0] == ("user", "A fresh start")


PARENT = """
<iframe id="chat" src="{api}/chat" title="Chat" style="width:600px;height:400px"></iframe>
<iframe id="sibling" src="{customer}/sibling" title="Sibling"></iframe>
<iframe id="stranger" src="{stranger}/stranger" title="Stranger"></iframe>
<script>
  window.replies = [];
  window.wanted = null;
  const chat = document.getElementById("chat");
  addEventListener("message", (e) => {{
    if (e.source === chat.contentWindow) replies.push({{ origin: e.origin, data: e.data }});
  }});
  // The integration guide's parent, with an exact target origin instead of "*".
  chat.addEventListener("load", () => {{
    if (wanted) chat.contentWindow.postMessage({{ type: "load_session", session_id: wanted }}, "{api}");
  }});
</script>
"""
# A frame that tries to steer the chat frame next to it.
MEDDLER = """
<script>
  window.received = [];
  addEventListener("message", (e) => received.push(e.data));
  window.meddle = (id) => {
    parent.frames[0].postMessage({ type: "load_session", session_id: id }, "*");
    parent.frames[0].postMessage({ type: "chatbot:connect" }, "*");
  };
</script>
"""


def test_chat_takes_postmessage_only_from_its_allowed_parent(new_page, live_server, customer_site, stranger_site):
    api = live_server.url
    session_id = in_db_thread(widget_session)
    customer_site.serve("/sibling", MEDDLER)
    stranger_site.serve("/stranger", MEDDLER)
    parent_url = customer_site.serve(
        "/parent", PARENT.format(api=api, customer=customer_site.origin, stranger=stranger_site.origin)
    )
    page = new_page()
    chat_navigations = []
    page.on("framenavigated", lambda frame: frame.name == "chat" and chat_navigations.append(frame.url))

    page.goto(parent_url)
    chat_frame = page.locator("#chat").content_frame
    chat = ChatUI(chat_frame)
    expect(chat.textbox).to_be_visible()
    meddlers = [frame for frame in page.frames if frame.url.endswith(("/sibling", "/stranger"))]
    assert len(meddlers) == 2

    # From a disallowed origin, and from an allowed origin that is not the parent: ignored.
    for meddler in meddlers:
        meddler.evaluate("id => meddle(id)", session_id)
    # The parent's own question is answered, to its exact origin; the meddlers get nothing.
    page.evaluate(
        "api => document.getElementById('chat').contentWindow.postMessage({type: 'chatbot:connect'}, api)", api
    )
    page.wait_for_function("() => replies.length === 1")
    page.wait_for_timeout(200)
    assert page.evaluate("replies") == [
        {"origin": api, "data": {"type": "chatbot:session", "session_id": None, "title": "Chat with us"}}
    ]
    assert [meddler.evaluate("received") for meddler in meddlers] == [[], []]
    assert chat_navigations == [f"{api}/chat"]
    assert chat.transcript() == []

    # The allowed parent loads a conversation.
    page.evaluate(
        "([id, api]) => { wanted = id; document.getElementById('chat').contentWindow.postMessage("
        "{type: 'load_session', session_id: id}, api) }",
        [session_id, api],
    )
    page.wait_for_function("id => replies.some(r => r.data.session_id === id)", arg=session_id)
    expect(chat_frame.get_by_text("Conversation continued from widget")).to_be_visible()
    assert chat.transcript() == [("user", "Which tent for two?"), ("assistant", "The Ridgeline 2P.")]
    # It loaded once, and answered the guide's repeat on load instead of loading again.
    page.wait_for_timeout(200)
    assert chat_navigations == [f"{api}/chat", f"{api}/chat?session={session_id}"]


def test_only_allowlisted_sites_may_frame_chat(new_page, live_server, customer_site, stranger_site):
    frame = f'<iframe id="chat" src="{live_server.url}/chat" title="Chat"></iframe>'
    page = new_page()

    page.goto(customer_site.serve("/frames-chat", frame))
    expect(page.frame_locator("#chat").locator("#chatbot")).to_have_count(1)

    page.goto(stranger_site.serve("/frames-chat", frame))
    page.wait_for_load_state("load")
    assert page.frame_locator("#chat").locator("#chatbot").count() == 0
