// Live updates for the pages of a running workflow. The server sends the
// workflow's state counts as server-sent events; the summary page updates
// its numbers and progress bar in place, other pages re-fetch themselves
// when the counts change (at most every two seconds). No library, nothing
// loaded from elsewhere.
(function () {
  "use strict";
  var body = document.body;
  var run = body.dataset.run;
  if (!run || !body.dataset.live || !window.EventSource) return;
  var live = document.getElementById("live");
  var summary = !!document.getElementById("counts");
  var last = null, pending = false, lastReload = 0;

  function setText(sel, text) {
    var el = document.querySelector(sel);
    if (el) el.textContent = text;
  }

  function updateSummary(st) {
    var counts = document.getElementById("counts");
    Object.keys(st.counts).forEach(function (s) {
      var el = counts.querySelector('[data-count="' + s + '"]');
      if (el) { el.textContent = st.counts[s]; return; }
      // A state not on the page yet: add its box.
      var a = document.createElement("a");
      // The colour is a class of colors.css (the Content-Security-Policy
      // refuses style attributes); a state it lacks takes the default.
      a.className = "count" + (/^[a-z_]+$/.test(s) ? " c-" + s : ""); a.href = "tasks?state=" + encodeURIComponent(s);
      a.innerHTML = '<span class="n"></span><span class="s"></span>';
      a.firstChild.dataset.count = s; a.firstChild.textContent = st.counts[s];
      a.lastChild.textContent = s;
      var empty = counts.querySelector(".empty"); if (empty) empty.remove();
      counts.appendChild(a);
    });
    counts.querySelectorAll("[data-count]").forEach(function (el) {
      if (!(el.dataset.count in st.counts)) el.textContent = "0";
    });
    // The bar is an SVG of width 1000 (as pages.go draws it): each part
    // starts where the one before ends.
    var x = 0;
    st.progress.forEach(function (p) {
      var w = 1000 * p.n / Math.max(1, st.total);
      var part = document.querySelector('[data-part="' + p.state + '"]');
      if (part) {
        part.setAttribute("x", x.toFixed(2));
        part.setAttribute("width", w.toFixed(2));
        var tip = part.querySelector("title");
        if (tip) tip.textContent = p.state + ": " + p.n;
      }
      x += w;
      setText('[data-part-count="' + p.state + '"]', p.n);
    });
    setText("#total", st.total);
  }

  function reload() {
    if (pending) return;
    var wait = Math.max(0, lastReload + 2000 - Date.now());
    pending = true;
    setTimeout(function () {
      fetch(location.href, { cache: "no-store" }).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("content");
        if (fresh) document.getElementById("content").innerHTML = fresh.innerHTML;
      }).finally(function () { pending = false; lastReload = Date.now(); });
    }, wait);
  }

  var es;
  function onCounts(e) {
    var st = JSON.parse(e.data);
    if (live) { live.classList.remove("stale"); live.title = "updated " + new Date().toLocaleTimeString(); }
    body.dataset.updates = String(Number(body.dataset.updates || 0) + 1);
    if (summary) updateSummary(st);
    else if (last !== null && last !== e.data) reload();
    last = e.data;
  }
  function onDone(e) {
    es.close();
    var lost = false;
    try { lost = JSON.parse(e.data).lost === true; } catch (err) { /* an older server sends {} */ }
    var badge = document.getElementById("runstatus");
    if (badge && lost) { badge.textContent = "Ended uncleanly"; badge.className = "badge lost"; }
    else if (badge) { badge.textContent = "Completed"; badge.className = "badge completed"; }
    if (live) live.remove();
    body.dataset.done = "1";
    if (!summary) reload();
  }
  function connect() {
    es = new EventSource("/workflow/" + encodeURIComponent(run) + "/events");
    es.addEventListener("counts", onCounts);
    es.addEventListener("done", onDone);
    es.onerror = function () {
      if (live) live.classList.add("stale");
      // The browser retries a dropped stream itself, but not one the
      // server refused (503 when too many streams are open): try again
      // later, as its Retry-After asks.
      if (es.readyState === EventSource.CLOSED && !body.dataset.done) setTimeout(connect, 10000);
    };
  }
  connect();
})();
