/*
 * The admin transcript, live: new messages from the session's feed (same origin, so the
 * staff member's login comes along), shown as text only; the takeover forms post with
 * fetch and the page follows who handles the session from the feed's status events.
 * Without this script the forms still work, by posting and reloading.
 */
(() => {
  "use strict";
  const transcript = document.querySelector(".transcript[data-events]");
  if (!transcript) return;
  const controls = document.getElementById("takeover");
  const seen = new Set([...transcript.querySelectorAll("[data-seq]")].map((node) => Number(node.dataset.seq)));
  const ROLES = { user: "User", assistant: "Assistant", system: "System" };

  const text = (tag, className, content) => {
    const node = document.createElement(tag);
    node.className = className;
    node.textContent = content;
    return node;
  };

  function show(message) {
    if (seen.has(message.seq)) return;
    seen.add(message.seq);
    transcript.querySelector(":scope > p")?.remove(); // "No messages yet."
    const node = text("div", `msg msg-${message.role}`, "");
    node.id = `msg-${message.seq}`;
    node.dataset.seq = message.seq;
    const meta = [`#${message.seq}`, ROLES[message.role] || message.role, message.author_name, message.channel];
    node.append(text("span", "meta", meta.filter(Boolean).join(" · ")), message.content);
    transcript.append(node);
  }

  function showStatus(status) {
    if (!controls) return;
    const handler = status.handled_by;
    controls.querySelector(".handler").textContent =
      (handler ? `Handled by ${handler}` : "The assistant answers") + (status.waiting ? " · waiting for a person" : "");
    controls.querySelector(".takeover-button").hidden = handler === controls.dataset.me;
    controls.querySelector(".handback-button").hidden = !handler;
  }

  // The visitor may give the conversation a new id ("Stop sharing this link"): the feed on
  // the old one is ended and then refused, and this page, found by pk, names the new one.
  function follow(events, after) {
    const feed = new EventSource(`${events}?after=${after}`);
    feed.addEventListener("message", (event) => show(JSON.parse(event.data)));
    feed.addEventListener("status", (event) => showStatus(JSON.parse(event.data)));
    feed.addEventListener("error", async () => {
      if (feed.readyState !== EventSource.CLOSED) return; // reconnecting by itself
      const page = await fetch(location.href, { credentials: "same-origin" }).then((r) => r.text(), () => "");
      const next = new DOMParser().parseFromString(page, "text/html").querySelector(".transcript[data-events]");
      if (next && next.dataset.events !== events) follow(next.dataset.events, Math.max(after, ...seen));
    });
  }
  follow(transcript.dataset.events, Number(transcript.dataset.after));

  // What the server said went wrong, after the button that was pressed.
  function complain(button, message) {
    button.parentNode.querySelector(".transcript-error")?.remove();
    if (message) button.after(text("p", "transcript-error", message));
  }

  // The forms sit outside the session's own form; their buttons name them (form="…").
  document.querySelectorAll("form.staff-action").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = [...form.elements].find((element) => element.type === "submit");
      button.disabled = true;
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        const body = await response.json();
        if (!response.ok) return complain(button, body.error?.message || "That did not work.");
        complain(button, "");
        showStatus(body.status);
        if (form.id === "reply-form") form.reset(); // the reply arrives through the feed
      } catch {
        complain(button, "The server could not be reached. Try again.");
      } finally {
        button.disabled = false;
      }
    });
  });
})();
