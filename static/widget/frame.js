/*
 * The full page on your own site: frames /chat and hands it the conversation.
 *
 *   <script src="https://HOST/static/widget/frame.js" data-api-base="https://HOST" defer></script>
 *
 * Put the tag where the chat should appear (or name a container with data-target).
 * The ?session=<id> of this page goes to the frame in its URL, so the conversation is
 * on screen at once; when the visitor starts a new one, the frame says so (postMessage,
 * checked against the frame's exact origin and window) and this page's address bar
 * follows, so a reload or a shared link continues it. Options: data-height (CSS length,
 * default 80vh), data-title (the frame's accessible name; by default the page's own title,
 * in the visitor's language), data-lang (the page's language; by default the browser's).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var data = script.dataset;
  var apiBase = (data.apiBase || new URL(script.src).origin).replace(/\/+$/, "");
  var chatUrl = new URL(apiBase + "/chat");
  var session = new URLSearchParams(location.search).get("session");
  if (session) chatUrl.searchParams.set("session", session);
  if (data.lang) chatUrl.searchParams.set("lang", data.lang);

  var frame = document.createElement("iframe");
  frame.src = chatUrl.href;
  frame.title = data.title || "Chat";
  frame.className = "chatbot-frame";
  frame.referrerPolicy = "no-referrer";
  frame.style.cssText = "display:block;width:100%;border:0;height:" + (data.height || "80vh");
  var target = data.target && document.querySelector(data.target);
  if (target) target.append(frame);
  else if (script.parentNode === document.head) document.body.append(frame);
  else script.after(frame);

  frame.addEventListener("load", function () {
    frame.contentWindow.postMessage({ type: "chatbot:connect" }, chatUrl.origin);
  });
  window.addEventListener("message", function (event) {
    if (event.origin !== chatUrl.origin || event.source !== frame.contentWindow) return;
    var message = event.data;
    if (!message || message.type !== "chatbot:session") return;
    if (!data.title && typeof message.title === "string") frame.title = message.title;
    var url = new URL(location.href);
    if (message.session_id) url.searchParams.set("session", message.session_id);
    else url.searchParams.delete("session");
    history.replaceState(history.state, "", url.href);
  });
})();
