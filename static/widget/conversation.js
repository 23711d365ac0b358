// Shared by the widget and /chat. Message text reaches the DOM only as text nodes.
(() => {
  "use strict";
  const NS = (window.Chatbot = window.Chatbot || {});
  if (NS.Conversation) return;

  // The visitor's language: NS.catalog maps English to it (the widget's config, the page's
  // inline JSON); a string it lacks stays English. Extracted by makemessages -d djangojs.
  const gettext = (NS.gettext = (text) => NS.catalog?.[text] || text);
  const interpolate = (text, values) => text.replace(/%\((\w+)\)s/g, (_, key) => values[key]);

  // The markdown subset of widget/markdown.py; links and invisibles as conversations/display.py.
  const FENCE = /^\s*```/;
  const LIST_ITEM = /^\s*([-*+]|[0-9]{1,9}[.)])\s+(.*)$/;
  const HEADING = /^#{1,6}\s+(.*)$/;
  const INLINE =
    /`([^`]+)`|\*\*(.+?)\*\*|__(.+?)__|\*(?!\s)(.+?)\*|\[([^\]]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>"'()]*[^\s<>"'().,;:!?])/g;
  const LINK_URL = /^(https?):\/\/([a-z0-9.-]+(?::[0-9]{1,5})?)(?:[/?#]|$)/i;
  const MAIL_URL = /^mailto:[^@\s/?#]+@([a-z0-9.-]+)$/i;
  const INVISIBLE = /[\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;
  const visible = (text) => String(text).replace(INVISIBLE, "");
  function linkHost(url) {
    let m = LINK_URL.exec(url);
    if (!m) return (m = MAIL_URL.exec(url)) && m[1].toLowerCase();
    const host = m[2].toLowerCase();
    const port = m[1].toLowerCase() === "https" ? ":443" : ":80";
    return host.endsWith(port) ? host.slice(0, -port.length) : host;
  }

  const h = (tag, props, children = []) => {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  };
  const SVG = "http://www.w3.org/2000/svg";
  function icon(path) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.append(document.createElementNS(SVG, "path"));
    svg.firstChild.setAttribute("d", path);
    return svg;
  }
  const isNumber = (marker) => /[0-9]/.test(marker[0]);
  const isParagraphLine = (line) => !!line.trim() && ![FENCE, LIST_ITEM, HEADING].some((re) => re.test(line));
  const link = (url) => h("a", { href: url, target: "_blank", rel: "noopener noreferrer" });

  function inline(text, parent, links) {
    const linkable = (url) => links.includes(linkHost(url));
    const pattern = new RegExp(INLINE.source, "g");
    let position = 0;
    let m;
    while ((m = pattern.exec(text))) {
      if (m.index > position) parent.append(text.slice(position, m.index));
      position = pattern.lastIndex;
      if (m[1] != null) parent.append(h("code", {}, [m[1]]));
      else if (m[2] != null || m[3] != null) inline(m[2] ?? m[3], parent.appendChild(h("strong")), links);
      else if (m[4] != null) inline(m[4], parent.appendChild(h("em")), links);
      else if (m[5] != null && linkable(m[6])) inline(m[5], parent.appendChild(link(m[6])), []);
      else if (m[7] != null && linkable(m[7])) parent.appendChild(link(m[7])).append(m[7]);
      else parent.append(m[0]);
    }
    if (position < text.length) parent.append(text.slice(position));
  }

  function renderMarkdown(text, links = NS.linkHosts || []) {
    const lines = visible(text).replace(/\r\n?/g, "\n").split("\n");
    const out = document.createDocumentFragment();
    let i = 0;
    let m;
    while (i < lines.length) {
      const line = lines[i];
      if (FENCE.test(line)) {
        const code = [];
        i++;
        while (i < lines.length && !FENCE.test(lines[i])) code.push(lines[i++]);
        i++;
        out.append(h("pre", {}, [h("code", {}, [code.join("\n")])]));
      } else if (!line.trim()) {
        i++;
      } else if ((m = LIST_ITEM.exec(line))) {
        const ordered = isNumber(m[1]);
        const list = h(ordered ? "ol" : "ul");
        while (i < lines.length && (m = LIST_ITEM.exec(lines[i])) && isNumber(m[1]) === ordered) {
          inline(m[2], list.appendChild(h("li")), links);
          i++;
        }
        out.append(list);
      } else if ((m = HEADING.exec(line))) {
        inline(m[1], out.appendChild(h("p")).appendChild(h("strong")), links);
        i++;
      } else {
        const paragraph = out.appendChild(h("p"));
        while (i < lines.length && isParagraphLine(lines[i])) {
          if (paragraph.firstChild) paragraph.append(h("br"));
          inline(lines[i++], paragraph, links);
        }
      }
    }
    return out;
  }

  let lists = 0;
  function cite(bubble, citations) {
    const id = "cb-src" + ++lists;
    const items = {};
    const list = h(
      "ol",
      {},
      citations.map((c) => {
        const title = (NS.linkHosts || []).includes(linkHost(c.url)) ? link(c.url) : h("span");
        title.append(visible(c.title || ""));
        return (items[c.id] = h("li", { id: id + "-" + c.id, value: c.id, tabIndex: -1 }, [
          title,
          " ",
          h("small", {}, [linkHost(c.url) || ""]),
          h("div", {}, [visible(c.snippet || "")]),
        ]));
      }),
    );
    const marker = (n) => {
      const item = items[n];
      if (!item) return `[${n}]`;
      // Not by #id: from the widget that would change the host page's address.
      return h("a", { href: "#" + item.id, onclick: (event) => (event.preventDefault(), item.focus()) }, [`[${n}]`]);
    };
    const walk = document.createTreeWalker(bubble, NodeFilter.SHOW_TEXT);
    const texts = [];
    while (walk.nextNode()) if (!walk.currentNode.parentNode.closest("a,code")) texts.push(walk.currentNode);
    for (const text of texts) {
      text.replaceWith(...text.data.split(/\[([0-9]+)\]/).map((part, i) => (i % 2 ? marker(part) : part)));
    }
    list.setAttribute("aria-labelledby", id);
    bubble.append(h("div", { className: "cb-sources" }, [h("p", { id }, [gettext("Sources")]), list]));
  }

  const SPEAKER = { user: () => gettext("You:"), assistant: () => gettext("Assistant:") };

  function messageNode(role, content, extraClass = "", citations = [], by = null) {
    const bubble = h("div", { className: "cb-bubble" });
    if (role === "assistant") {
      bubble.append(renderMarkdown(content));
      if (Array.isArray(citations) && citations.length) cite(bubble, citations);
    } else bubble.textContent = visible(content);
    if (by) bubble.prepend(h("small", { className: "cb-by" }, [visible(by)]));
    return h("div", { className: `cb-msg cb-msg-${role} ${extraClass}`.trim() }, [
      h("span", { className: "cb-sr" }, [by ? visible(by) + ":" : SPEAKER[role]?.() || ""]),
      bubble,
    ]);
  }
  // Under the bot's answers (not a person's, not while streaming), pressed as stored.
  const THUMB = "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.3a2 2 0 0 0 2-1.7l1.4-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3";
  function rateBar(id, rating) {
    const button = (value, label) =>
      h("button", { type: "button", className: "cb-" + value, value, title: label, ariaLabel: label }, [icon(THUMB)]);
    const bar = h("div", { className: "cb-rate", role: "group", ariaLabel: gettext("Rate this answer") }, [
      button("up", gettext("Helpful")),
      button("down", gettext("Not helpful")),
    ]);
    bar.dataset.id = id;
    return pressed(bar, rating);
  }
  const pressed = (bar, rating) => {
    for (const button of bar.children) button.ariaPressed = String(button.value === rating);
    return bar;
  };
  const shownNode = (m) => {
    const node = messageNode(m.role, m.content, "", m.metadata?.citations, m.author_name);
    if (m.role === "assistant" && !m.author_name) node.append(rateBar(m.id, m.feedback?.rating));
    return node;
  };

  const typingNode = () =>
    h("div", { className: "cb-msg cb-msg-assistant cb-typing" }, [
      h("span", { className: "cb-sr" }, [gettext("Assistant is typing")]),
      h("div", { className: "cb-bubble", ariaHidden: "true" }, [h("i"), h("i"), h("i")]),
    ]);

  // Memory where storage is blocked or partitioned.
  function sessionStore(key) {
    let memory = null;
    return {
      get() {
        try {
          return localStorage.getItem(key) || memory;
        } catch {
          return memory;
        }
      },
      set(id) {
        memory = id;
        try {
          if (id) localStorage.setItem(key, id);
          else localStorage.removeItem(key);
        } catch {
          // memory holds it
        }
      },
    };
  }

  // Not crypto.randomUUID: it needs a secure context.
  const newClientMessageId = () =>
    "c-" + Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => (b | 256).toString(16).slice(1)).join("");

  const failure = (status, error = {}, sessionId = null, retryAfter = null) => ({
    failed: true,
    status,
    code: error.code || `http_${status}`,
    message: error.message || "",
    retryable: !!error.retryable || status === 0 || status === 429 || status >= 500,
    sessionId,
    retryAfter: retryAfter ?? error.retry_after,
  });

  async function failureFrom(response) {
    const body = await response.json().catch(() => null);
    return failure(response.status, body?.error, body?.session_id, response.headers.get("Retry-After"));
  }

  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          let event = "message";
          let data = "";
          for (const line of buffer.slice(0, end).split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          buffer = buffer.slice(end + 2);
          if (data) onEvent(event, JSON.parse(data));
        }
      }
    } catch (error) {
      reader.cancel().catch(() => {});
      throw error;
    }
  }

  function describe(problem) {
    if (problem.status === 0) return gettext("We couldn't reach the assistant. Check your connection and try again.");
    if (problem.code === "budget_exhausted") {
      return gettext("You've reached today's limit for this chat. Please come back tomorrow.");
    }
    if (problem.status === 429) {
      const seconds = parseInt(problem.retryAfter, 10);
      if (seconds > 0)
        return interpolate(gettext("You're sending messages too quickly. Try again in %(seconds)s seconds."), { seconds });
      return problem.message || gettext("You're sending messages too quickly. Try again in a moment.");
    }
    if (problem.code === "busy") return interpolate(gettext("Busy, retrying in %(seconds)s s…"), { seconds: problem.wait });
    if (problem.status >= 500) return gettext("The assistant couldn't answer just now. Try again.");
    return problem.message || gettext("Your message couldn't be sent.");
  }

  // options: apiBase, channel, language, sessionId, nextBefore, greeting, handoff, handler, onSession, emit.
  // follow(true) shows each seq of the live feed once; what comes during our turn (until it
  // is answered, retries included) waits for it.
  class Conversation {
    constructor(root, options) {
      const $ = (selector) => root.querySelector(selector);
      this.options = options;
      this.sessionId = options.sessionId || null;
      this.nextBefore = options.nextBefore || null;
      this.busy = false;
      this.seen = new Set();
      this.typing = typingNode();
      this.held = null;
      this.handler = options.handler;
      root.querySelectorAll("[data-seq]").forEach((node) => {
        this.saw(+node.dataset.seq);
        const answer = options.answers?.[node.dataset.seq]; // /chat's server-rendered answers
        if (answer) node.append(rateBar(answer.id, answer.rating));
      });
      this.epoch = 0; // answers for a conversation left behind are dropped
      this.scroller = $(".cb-scroll");
      this.earlier = $(".cb-earlier");
      this.list = $(".cb-list");
      this.input = $(".cb-input");
      this.sendButton = $(".cb-send");
      $(".cb-form").addEventListener("submit", (event) => {
        event.preventDefault();
        this.send(this.input.value);
        this.input.focus();
      });
      this.input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          this.send(this.input.value);
        }
      });
      this.input.addEventListener("input", () => this.autosize());
      this.earlier.addEventListener("click", () => this.loadEarlier());
      this.list.addEventListener("click", (event) => {
        const button = event.target.closest(".cb-rate button");
        if (button) this.rate(button.parentNode, button.ariaPressed === "true" ? null : button.value);
      });
      this.list.addEventListener("submit", (event) => {
        event.preventDefault();
        this.rate(event.target.previousSibling, "down", event.target.elements[0].value);
      });
      this.earlier.hidden = !this.nextBefore;
      const person = $(".cb-person");
      if (person) {
        person.hidden = !options.handoff;
        person.onclick = () => this.askForPerson();
      }
      const stop = (this.stop = $(".cb-stop"));
      stop.hidden = !this.sessionId;
      stop.onclick = () => this.confirmStop();
      this.scrollToEnd(true);
    }

    saw(seq) {
      this.seen.add(seq);
      this.seq = Math.max(this.seq || 0, seq);
    }

    follow(on) {
      this.following = on;
      this.feed?.close();
      this.feed = null;
      if (!on || !this.sessionId || this.restoring) return;
      const id = this.sessionId;
      const url = `${this.options.apiBase}/api/session/${encodeURIComponent(id)}/events?after=${this.seq || 0}`;
      const feed = (this.feed = new EventSource(url));
      const listen = (type, handle) =>
        feed.addEventListener(type, (event) => id === this.sessionId && handle(JSON.parse(event.data)));
      listen("message", (m) => (this.held ? this.held.push(m) : this.arrived(m)));
      listen("typing", () => this.busy || this.typing.isConnected || this.list.append(this.typing));
      listen("status", (status) => {
        const was = this.handler;
        this.handler = status.handled_by;
        if (was === undefined || was === this.handler) return;
        this.note(
          this.handler
            ? interpolate(gettext("%(name)s joined the conversation"), { name: this.handler })
            : gettext("You're back with the assistant"),
        );
      });
    }

    arrived(m) {
      if (this.seen.has(m.seq) || !SPEAKER[m.role]) return;
      this.saw(m.seq);
      this.typing.remove();
      this.list.append(shownNode(m));
      this.scrollToEnd();
    }

    note(text) {
      this.list.append(h("p", { className: "cb-note" }, [visible(text)]));
      this.scrollToEnd();
    }

    // POST /api/session/<id>/<action>: its JSON answer, or nothing once the error is shown.
    async post(action) {
      const response = await fetch(`${this.options.apiBase}/api/session/${encodeURIComponent(this.sessionId)}/${action}`, {
        method: "POST",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      }).catch(() => failure(0));
      if (response.ok) return response.json();
      this.showError(describe(response.failed ? response : await failureFrom(response)));
    }

    async askForPerson() {
      if (!this.sessionId) return this.note(gettext("Write your question first, then ask for a person."));
      if (await this.post("handoff")) this.note(gettext("We've told the team. A person will join this conversation soon."));
    }

    // Pressed again: withdrawn. "Not helpful" asks why.
    async rate(bar, rating, comment = "") {
      const path = `/api/session/${encodeURIComponent(this.sessionId)}/messages/${bar.dataset.id}/feedback`;
      const response = await fetch(this.options.apiBase + path, {
        method: "POST",
        credentials: "omit",
        referrerPolicy: "no-referrer",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ rating, comment }),
      }).catch(() => failure(0));
      if (!response.ok) return this.showError(describe(response.failed ? response : await failureFrom(response)));
      pressed(bar, rating);
      const after = bar.nextSibling;
      const hadFocus = after?.matches(":focus-within");
      after?.remove();
      if (comment) bar.after(h("p", { className: "cb-thanks", role: "status" }, [gettext("Thanks for your feedback.")]));
      else if (rating === "down") {
        const why = gettext("What was wrong? (optional)");
        bar.after(
          h("form", { className: "cb-why" }, [
            h("input", { maxLength: 1000, ariaLabel: why, placeholder: why }),
            h("button", {}, [gettext("Send feedback")]),
          ]),
        );
      }
      if (hadFocus) bar.lastChild.focus();
      this.scrollToEnd();
    }

    setSession(id) {
      if (id === this.sessionId) return;
      this.sessionId = id;
      this.stop.hidden = !id;
      if (!id) {
        this.seen.clear();
        this.seq = this.handler = undefined;
      }
      this.follow(this.following);
      this.options.onSession?.(id);
    }

    // Stop sharing: asked first, since whoever holds the link loses the conversation.
    confirmStop() {
      const yes = h("button", { type: "button", className: "cb-retry" }, [gettext("Stop sharing")]);
      const no = h("button", { type: "button", className: "cb-retry" }, [gettext("Cancel")]);
      const text = gettext("Anyone with this link will lose this conversation. You continue here under a new link.");
      this.ask?.remove();
      const row = (this.ask = h("div", { className: "cb-ask" }, [h("p", { id: "cb-ask" }, [text]), yes, no]));
      yes.setAttribute("aria-describedby", "cb-ask");
      no.onclick = () => (row.remove(), this.stop.focus());
      yes.onclick = async () => this.busy || (row.remove(), ((await this.stopSharing()) ? this.input : this.stop).focus());
      this.list.after(row);
      this.scrollToEnd(true);
      yes.focus();
    }

    // A new id: the old one finds nothing now, anywhere. The server ends the old id's
    // feeds, so ours is closed first and opened again on the new id.
    async stopSharing() {
      const following = this.following;
      this.setBusy(true);
      this.follow(false);
      const body = await this.post("rotate");
      this.setBusy(false);
      if (body) this.setSession(body.session_id);
      this.follow(following);
      if (!body) return false;
      this.note(gettext("Done: this conversation has a new link."));
      return true;
    }

    setBusy(busy) {
      this.busy = busy;
      if (busy) this.sendButton.setAttribute("aria-disabled", "true");
      else this.sendButton.removeAttribute("aria-disabled");
    }

    autosize() {
      this.input.style.height = "auto";
      this.input.style.height = Math.min(this.input.scrollHeight, 160) + "px";
    }

    scrollToEnd(force) {
      const s = this.scroller;
      if (force || s.scrollHeight - s.scrollTop - s.clientHeight < 120) s.scrollTop = s.scrollHeight;
    }

    greet() {
      if (this.options.greeting) this.list.append(messageNode("assistant", this.options.greeting, "cb-greeting"));
    }

    quietly(change) {
      this.list.setAttribute("aria-live", "off");
      change();
      setTimeout(() => this.list.setAttribute("aria-live", "polite"));
    }

    reset() {
      this.epoch++;
      this.held = null;
      this.setBusy(false);
      this.nextBefore = null;
      this.earlier.hidden = true;
      this.quietly(() => {
        this.list.replaceChildren();
        this.greet();
      });
      this.setSession(null);
    }

    async fetchPage(before) {
      const path = `/api/session/${encodeURIComponent(this.sessionId)}/messages` + (before ? `?before=${before}` : "");
      let response;
      try {
        response = await fetch(this.options.apiBase + path, {
          credentials: "omit",
          referrerPolicy: "no-referrer",
          headers: { Accept: "application/json" },
        });
      } catch {
        throw failure(0);
      }
      if (!response.ok) throw await failureFrom(response);
      return response.json();
    }

    showPage(page, prepend) {
      page.messages.forEach((m) => this.saw(m.seq));
      const nodes = page.messages.filter((m) => SPEAKER[m.role]).map(shownNode);
      this.quietly(() => (prepend ? this.list.prepend(...nodes) : this.list.replaceChildren(...nodes)));
      this.nextBefore = page.has_more ? page.next_before : null;
      this.earlier.hidden = !this.nextBefore;
    }

    // A session the server no longer has starts afresh without a word.
    async restore(id) {
      const epoch = ++this.epoch;
      this.sessionId = id;
      this.stop.hidden = !id;
      this.setBusy((this.restoring = true));
      try {
        const page = await this.fetchPage(null);
        if (epoch !== this.epoch) return;
        this.showPage(page, false);
        this.handler = page.status?.handled_by;
        if (!page.messages.length) this.greet();
        this.scrollToEnd(true);
      } catch (problem) {
        if (epoch !== this.epoch) return;
        this.restoring = false;
        if (problem.status === 404) return this.reset();
        this.showError(describe(problem), () => this.restore(id));
      }
      if (epoch === this.epoch) {
        this.setBusy((this.restoring = false));
        this.follow(this.following);
      }
    }

    async loadEarlier() {
      const s = this.scroller;
      const fromBottom = s.scrollHeight - s.scrollTop;
      this.earlier.disabled = true;
      try {
        this.showPage(await this.fetchPage(this.nextBefore), true);
        s.scrollTop = s.scrollHeight - fromBottom;
      } catch (problem) {
        this.showError(describe(problem), () => this.loadEarlier());
      }
      this.earlier.disabled = false;
      if (this.earlier.hidden) this.input.focus();
    }

    send(text) {
      if (this.busy || !text.trim()) return false;
      this.input.value = "";
      this.autosize();
      const turn = { text, id: newClientMessageId(), node: messageNode("user", text) };
      this.list.append(turn.node);
      this.scrollToEnd(true);
      this.options.emit?.("message-sent", { sessionId: this.sessionId, text, clientMessageId: turn.id });
      this.attempt(turn);
      return true;
    }

    // Retries reuse client_message_id: the server answers from what it stored.
    async attempt(turn) {
      const epoch = this.epoch;
      const typing = this.typing;
      let reply = null;
      let text = "";
      let frame = 0;
      let done = null;
      const paint = () => {
        frame = 0;
        reply.lastChild.replaceChildren(renderMarkdown(text));
        this.scrollToEnd();
      };
      const onEvent = (event, data) => {
        if (epoch !== this.epoch) throw failure(0, { code: "abandoned" });
        if (event === "session") this.setSession(data.session_id);
        else if (event === "delta") {
          if (!reply) {
            typing.remove();
            reply = this.list.appendChild(messageNode("assistant", ""));
            reply.ariaBusy = "true";
          }
          text += data.text;
          frame ||= requestAnimationFrame(paint);
        } else if (event === "done") done = data;
        else if (event === "error") throw failure(502, data.error, data.session_id);
      };
      this.setBusy(true);
      this.held ||= [];
      this.clearError();
      this.list.append(typing);
      this.scrollToEnd(true);
      try {
        const response = await fetch(this.options.apiBase + "/api/chat", {
          method: "POST",
          credentials: "omit",
          referrerPolicy: "no-referrer",
          headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
          body: JSON.stringify({
            query: turn.text,
            session_id: this.sessionId,
            client_message_id: turn.id,
            stream: true,
            channel: this.options.channel,
            language: this.options.language,
          }),
        }).catch(() => {
          throw failure(0);
        });
        if (!response.ok || !/event-stream/.test(response.headers.get("Content-Type"))) {
          throw await failureFrom(response);
        }
        await readEvents(response, onEvent).catch((problem) => {
          throw problem?.failed ? problem : failure(0);
        });
        if (!done) throw failure(0);
        cancelAnimationFrame(frame);
        typing.remove();
        const { user, assistant } = done.messages;
        [user, assistant].forEach((m) => m && this.saw(m.seq));
        this.setSession(done.session_id);
        if (assistant) reply ? reply.replaceWith(shownNode(assistant)) : this.list.append(shownNode(assistant));
        this.scrollToEnd();
        this.options.emit?.("message-received", { sessionId: done.session_id, message: done.messages.assistant });
      } catch (problem) {
        cancelAnimationFrame(frame);
        typing.remove();
        reply?.remove();
        if (epoch === this.epoch) return this.failed(turn, problem);
      }
      this.release();
      if (epoch === this.epoch) this.setBusy(false);
    }

    release() {
      const held = this.held || [];
      this.held = null;
      held.forEach((m) => this.arrived(m));
    }

    failed(turn, problem) {
      if (problem.sessionId) this.setSession(problem.sessionId);
      if (problem.code === "session_not_found" && !turn.fresh) {
        turn.fresh = true; // the session expired while the page was open
        this.setSession(null);
        return this.attempt(turn);
      }
      if (problem.code === "busy") return this.retrySoon(turn, problem);
      this.setBusy(false);
      if (problem.retryable) return this.showError(describe(problem), () => this.attempt(turn), turn.node);
      // Never accepted as it is: the text goes back to edit.
      turn.node.remove();
      this.release();
      if (!this.input.value) this.input.value = turn.text;
      this.autosize();
      this.showError(describe(problem));
    }

    retrySoon(turn, problem) {
      const epoch = this.epoch;
      problem.wait = Math.max(1, parseInt(problem.retryAfter, 10) || 2);
      const again = () => {
        clearTimeout(timer);
        if (epoch !== this.epoch || !turn.node.isConnected) return;
        this.clearError();
        this.attempt(turn);
      };
      const timer = setTimeout(again, problem.wait * 1000);
      this.showError(describe(problem), again, turn.node);
    }

    clearError() {
      this.list.querySelector(".cb-error")?.remove();
    }

    showError(message, retry, after) {
      this.clearError();
      const row = h("div", { className: "cb-error" }, [h("p", { role: "alert" }, [message])]);
      if (retry) {
        const button = row.appendChild(h("button", { type: "button", className: "cb-retry" }, [gettext("Retry")]));
        button.onclick = () => {
          row.remove();
          this.input.focus();
          retry();
        };
      }
      if (after?.isConnected) after.after(row);
      else this.list.append(row);
      this.scrollToEnd(true);
    }
  }

  Object.assign(NS, { Conversation, renderMarkdown, cite, sessionStore, h, icon });
})();
