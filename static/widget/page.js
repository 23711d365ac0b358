/*
 * The full page /chat. The server has already rendered the transcript; this hands it
 * to the shared conversation (conversation.js) for sending and streaming, keeps
 * ?session=<id> in the address bar, and, when a site frames the page, talks to that
 * site with postMessage.
 *
 * postMessage is accepted only from the window that frames this page, and only when
 * that window is on an allowlisted origin (CHATBOT_ALLOWED_ORIGINS) or our own; replies
 * go to that exact origin, never to "*". Messages understood:
 *   {type: "load_session", session_id}  show that conversation (the integration guide's)
 *   {type: "chatbot:connect"}           ask which conversation is shown
 * Reply, also sent whenever the conversation changes:
 *   {type: "chatbot:session", session_id (or null), title (the page's, in its language),
 *    error?: "session_not_found"}
 */
(function () {
  "use strict";
  var root = document.getElementById("chatbot");
  var data = root.dataset;
  var allowed = JSON.parse(data.allowedOrigins || "[]");
  var framed = window.parent !== window;
  var parentOrigin = null;

  function tellParent(message) {
    if (parentOrigin) window.parent.postMessage(message, parentOrigin);
  }

  function report() {
    var message = { type: "chatbot:session", session_id: conversation.sessionId, title: document.title };
    if (!conversation.sessionId && data.missingSession) message.error = "session_not_found";
    tellParent(message);
  }

  // A reload, or a copied link, continues the conversation.
  function showInAddressBar(id) {
    var url = new URL(location.href);
    if (id) url.searchParams.set("session", id);
    else url.searchParams.delete("session");
    history.replaceState(history.state, "", url.href);
  }

  window.Chatbot.linkHosts = JSON.parse(data.linkHosts || "[]"); // where links in replies may go
  window.Chatbot.catalog = JSON.parse(document.getElementById("cb-catalog").textContent); // this language's strings
  root.querySelectorAll(".cb-msg > script[type='application/json']").forEach(function (citations) {
    window.Chatbot.cite(citations.previousElementSibling, JSON.parse(citations.textContent));
    citations.remove();
  });
  var conversation = new window.Chatbot.Conversation(root, {
    apiBase: "",
    channel: "page",
    language: document.documentElement.lang,
    sessionId: data.sessionId || null,
    nextBefore: Number(data.nextBefore) || null,
    answers: JSON.parse(document.getElementById("cb-answers").textContent),
    greeting: data.greeting,
    // Who answered when the page was rendered: a change the live feed reports is announced.
    handler: data.handledBy == null ? undefined : data.handledBy || null,
    onSession: function (id) {
      showInAddressBar(id);
      report();
    },
  });
  if (data.notFound) showInAddressBar(null);
  conversation.follow(true);
  fetch("/api/widget/config")
    .then(function (response) {
      return response.json();
    })
    .then(function (config) {
      root.querySelector(".cb-person").hidden = !config.handoff;
    })
    .catch(function () {});

  root.querySelector(".cb-new").addEventListener("click", function () {
    root.querySelectorAll(".cb-notice").forEach(function (notice) {
      notice.remove();
    });
    conversation.reset();
    conversation.input.focus();
  });

  window.addEventListener("message", function (event) {
    if (!framed || event.source !== window.parent) return;
    if (event.origin !== location.origin && allowed.indexOf(event.origin) < 0) return;
    var message = event.data;
    if (!message || typeof message !== "object") return;
    if (message.type === "load_session") {
      var id = message.session_id;
      if (typeof id !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) return;
      parentOrigin = event.origin;
      // The guide's parent sends load_session on every load of the frame: answer the
      // repeat instead of loading again, also for an id that turned out to be gone.
      if (id === conversation.sessionId || id === data.missingSession) return report();
      var url = new URL(location.href);
      url.searchParams.set("session", id);
      location.replace(url.href); // the server renders it, notice and all
    } else if (message.type === "chatbot:connect") {
      parentOrigin = event.origin;
      report();
    }
  });
})();
