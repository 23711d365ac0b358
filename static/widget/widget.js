// The widget loader (README, "Widget"): a shadow root keeps the page's CSS and ours apart.
(() => {
  "use strict";
  const script = document.currentScript;
  const NS = (window.Chatbot = window.Chatbot || {});
  if (!script || NS.open) return;

  const data = script.dataset;
  const assets = new URL(".", script.src).href;
  const apiBase = (data.apiBase || new URL(script.src).origin).replace(/\/+$/, "");
  const fullPageUrl = data.fullPageUrl || apiBase + "/chat";

  let ui = null;
  const waiting = [];
  const whenReady = (call) => () => (ui ? call() : waiting.push(call));
  const emit = (type, detail = {}) => window.dispatchEvent(new CustomEvent("chatbot:" + type, { detail }));
  Object.assign(NS, {
    open: whenReady(() => ui.open(true)),
    close: whenReady(() => ui.close(false)),
    toggle: whenReady(() => (ui.isOpen() ? ui.close(false) : ui.open(true))),
    newConversation: whenReady(() => ui.conversation.reset()),
    on(type, listener) {
      const handler = (event) => listener(event.detail);
      window.addEventListener("chatbot:" + type, handler);
      return () => window.removeEventListener("chatbot:" + type, handler);
    },
  });

  const load = (parent, tag, attributes) =>
    new Promise((resolve) => {
      const node = Object.assign(document.createElement(tag), attributes);
      node.onload = node.onerror = resolve;
      parent.append(node);
    });

  const icon = (path) => NS.icon(path); // conversation.js's, loaded before any is drawn
  const CHAT = "M5 4h14a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-8l-5 4v-4H5a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
  const CLOSE = "M6 6l12 12M18 6L6 18";
  // A broken link: what "Stop sharing this link" does to the one given out.
  const STOP = "M9 15l6-6M11 6l1-1a4 4 0 0 1 6 6l-1 1M13 18l-1 1a4 4 0 0 1-6-6l1-1M4 4l16 16";

  function build(root) {
    const { h, gettext } = NS;
    const title = data.title || gettext("Chat with us");
    const labelled = (node, label) => (node.setAttribute("aria-label", label), node);
    const iconButton = (className, label, path) =>
      labelled(h("button", { type: "button", className: "cb-icon " + className, title: label }, [icon(path)]), label);
    const newButton = iconButton("cb-new", gettext("New conversation"), "M12 5v14M5 12h14");
    const stopButton = iconButton("cb-stop", gettext("Stop sharing this link"), STOP);
    const personButton = iconButton("cb-person", gettext("Talk to a person"), "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0");
    const fullButton = iconButton(
      "cb-full",
      gettext("Open full page"),
      "M14 4h6v6M20 4l-9 9M18 14v4a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h4",
    );
    const closeButton = iconButton("cb-close", gettext("Close chat"), CLOSE);
    const input = labelled(h("textarea", { className: "cb-input", rows: 1, placeholder: gettext("Type your message…") }), gettext("Message"));
    const sendLabel = gettext("Send");
    const send = labelled(h("button", { type: "submit", className: "cb-send", title: sendLabel }, [icon("M12 19V5M6 11l6-6 6 6")]), sendLabel);
    const list = labelled(h("div", { className: "cb-list" }), gettext("Messages"));
    list.setAttribute("role", "log");
    list.setAttribute("aria-live", "polite");
    const panel = labelled(
      h("section", { className: "cb-panel", id: "cb-panel", hidden: true }, [
        // Not <header>: a second banner landmark.
        h("div", { className: "cb-head" }, [
          h("span", { className: "cb-avatar" }, [icon(CHAT)]),
          h("h2", { className: "cb-title" }, [title]),
          newButton,
          stopButton,
          personButton,
          fullButton,
          closeButton,
        ]),
        h("div", { className: "cb-scroll" }, [
          h("button", { type: "button", className: "cb-earlier", hidden: true }, [gettext("Load earlier messages")]),
          list,
        ]),
        h("form", { className: "cb-form" }, [input, send]),
      ]),
      title,
    );
    panel.setAttribute("role", "dialog");
    // Narrow, the panel covers the page: modal.
    const narrow = matchMedia("(max-width: 480px)");
    (narrow.onchange = () => panel.setAttribute("aria-modal", narrow.matches))();
    const launcher = labelled(h("button", { type: "button", className: "cb-launcher" }, [icon(CHAT), icon(CLOSE)]), gettext("Open chat"));
    launcher.setAttribute("aria-controls", "cb-panel");
    launcher.setAttribute("aria-expanded", "false");
    const side = "cb-root cb-" + (data.position === "left" ? "left" : "right");
    const frame = h("div", { className: side, lang: NS.language || "en", dir: NS.direction || "ltr" }, [panel, launcher]);
    root.append(frame);

    const store = NS.sessionStore("chatbot:session:" + apiBase);
    const conversation = new NS.Conversation(panel, {
      apiBase,
      channel: "widget",
      language: NS.language,
      greeting: data.greeting || gettext("Hi! How can I help you today?"),
      handoff: NS.handoff && data.handoff !== "off",
      onSession: store.set,
      emit,
    });
    let restored = false;
    const isOpen = () => !panel.hidden;

    function open(focus) {
      if (!restored) {
        restored = true;
        const id = store.get();
        if (id) conversation.restore(id);
        else conversation.greet();
      }
      if (isOpen()) return;
      panel.hidden = false;
      conversation.follow(true);
      frame.classList.add("cb-open");
      launcher.setAttribute("aria-expanded", "true");
      conversation.scrollToEnd(true);
      if (focus) input.focus();
      emit("open");
    }

    function close(focusLauncher) {
      if (!isOpen()) return;
      const hadFocus = panel.contains(root.activeElement);
      panel.hidden = true;
      conversation.follow(false);
      frame.classList.remove("cb-open");
      launcher.setAttribute("aria-expanded", "false");
      if (focusLauncher || hadFocus) launcher.focus();
      emit("close");
    }

    launcher.onclick = () => (isOpen() ? close(true) : open(true));
    closeButton.onclick = () => close(true);
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close(true);
      const [from, to] = event.shiftKey ? [newButton, send] : [send, newButton];
      if (event.key === "Tab" && narrow.matches && root.activeElement === from) {
        event.preventDefault();
        to.focus();
      }
    });
    newButton.onclick = () => {
      conversation.reset();
      input.focus();
    };
    fullButton.onclick = () => {
      const url = new URL(fullPageUrl, location.href);
      if (conversation.sessionId) url.searchParams.set("session", conversation.sessionId);
      if (data.lang) url.searchParams.set("lang", NS.language); // the site's choice; else the browser's, as here
      window.open(url.href, "_blank", "noopener,noreferrer");
    };
    return { open, close, isOpen, conversation };
  }

  async function start() {
    const host = document.createElement("chatbot-widget");
    const root = host.attachShadow({ mode: "open" });
    if (data.accent && CSS.supports("color", data.accent)) host.style.setProperty("--cb-accent", data.accent);
    host.hidden = true; // until styled
    document.body.append(host);
    // The server picks the language (data-lang, else the browser's) and sends its strings
    // with the config, so another language costs no request and English no bytes.
    const lang = [data.lang, ...navigator.languages].filter(Boolean).join();
    await Promise.all([
      fetch(apiBase + "/api/widget/config?lang=" + encodeURIComponent(lang), { credentials: "omit", referrerPolicy: "no-referrer" })
        .then((response) => response.json())
        .then((config) =>
          Object.assign(NS, {
            linkHosts: config.link_hosts,
            handoff: config.handoff,
            language: config.language,
            direction: config.direction,
            catalog: config.catalog,
          }),
        )
        .catch(() => {}),
      load(root, "link", { rel: "stylesheet", href: assets + "conversation.css" }),
      load(root, "link", { rel: "stylesheet", href: assets + "widget.css" }),
      NS.Conversation || load(document.head, "script", { src: assets + "conversation.js" }),
    ]);
    if (!NS.Conversation) return console.error("Chatbot: could not load " + assets + "conversation.js");
    ui = build(root);
    host.hidden = false;
    waiting.splice(0).forEach((call) => call());
    emit("ready");
    if (data.open === "true") ui.open(false);
  }

  start();
})();
