// The console's only script: follow the drill live. Everything works without it (forms post and redirect);
// with it, the read-only panels ([data-live-part]) are redrawn from the server's HTML whenever the drill's
// Server-Sent Events stream says something happened, and every few seconds for the clocks. Forms are never
// redrawn, so the keyboard focus and what a person is typing stay where they are.
(function () {
  "use strict";
  var body = document.body;
  var parts = document.querySelectorAll("[data-live-part]");
  var liveUrl = body.dataset.live;
  var streamUrl = body.dataset.stream;
  var flash = document.getElementById("flash");
  if (flash) { flash.focus(); }
  if (!parts.length || !liveUrl) { return; }
  var last = null;
  var pending = null;
  var inflight = false;
  function refresh() {
    pending = null;
    if (inflight) { schedule(250); return; }
    inflight = true;
    fetch(liveUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last) {
          last = html;
          var scroller = document.getElementById("timeline");
          var atEnd = !scroller || scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 4;
          var doc = new DOMParser().parseFromString(html, "text/html");
          parts.forEach(function (part) {
            var fresh = doc.getElementById(part.id);
            if (fresh) { part.innerHTML = fresh.innerHTML; }
          });
          var timeline = document.getElementById("timeline");
          if (timeline && atEnd) { timeline.scrollTop = timeline.scrollHeight; }
          body.dataset.refreshed = String(Date.now());
        }
      })
      .catch(function () { /* the next event or tick tries again */ })
      .then(function () { inflight = false; });
  }
  function schedule(ms) { if (pending === null) { pending = setTimeout(refresh, ms); } }
  if (streamUrl && window.EventSource) {
    var source = new EventSource(streamUrl, { withCredentials: true });
    // The server names each message after the journal event's type (drill.started, acknowledged, ...).
    // body.dataset.streamed counts the journal events heard, for people debugging and for the tests.
    var heard = function () {
      body.dataset.streamed = String(Number(body.dataset.streamed || "0") + 1);
      schedule(150);
    };
    (body.dataset.eventTypes || "").split(" ").forEach(function (type) {
      if (type) { source.addEventListener(type, heard); }
    });
    source.onmessage = function () { schedule(150); };
    source.addEventListener("end", function () { schedule(50); source.close(); });
    source.onopen = function () { body.dataset.stream_open = "1"; };
  }
  setInterval(function () { schedule(0); }, 5000);
  var tl = document.getElementById("timeline");
  if (tl) { tl.scrollTop = tl.scrollHeight; }
})();
