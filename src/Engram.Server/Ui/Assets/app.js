// Engram UI: progressive enhancement only; every page works without this file.
(function () {
  "use strict";
  // This browser runs the script: the server may stream slow parts (search results) from now on.
  document.cookie = "engram_js=1; path=/ui; SameSite=Strict";
  // A streamed part arrives after the page as <blazor-ssr><template blazor-component-id=N>: it replaces what
  // stood between the <!--bl:N--> and <!--/bl:N--> markers (a "Searching…" placeholder). This script is
  // deferred, so it runs once the whole response is in.
  document.querySelectorAll("blazor-ssr template[blazor-component-id]").forEach(function (t) {
    var id = t.getAttribute("blazor-component-id"), walk = document.createTreeWalker(document.body, NodeFilter.SHOW_COMMENT), start = null, end = null;
    while (walk.nextNode() && !end) {
      if (walk.currentNode.data === "bl:" + id) { start = walk.currentNode; } else if (start && walk.currentNode.data === "/bl:" + id) { end = walk.currentNode; }
    }
    if (!end) { return; }
    while (start.nextSibling !== end) { start.parentNode.removeChild(start.nextSibling); }
    end.parentNode.insertBefore(t.content, end);
  });
  document.querySelectorAll("blazor-ssr, blazor-ssr-end").forEach(function (e) { e.remove(); });
  // Confirmation for destructive forms.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
  // Weight sliders show their value.
  document.querySelectorAll("input[type=range]").forEach(function (r) {
    var out = document.querySelector("output[for='" + r.id + "']");
    if (!out) { return; }
    var show = function () { out.textContent = Number(r.value).toFixed(2); };
    r.addEventListener("input", show); show();
  });
  // Key-value TTLs count down.
  var ttls = document.querySelectorAll("[data-expires]");
  if (ttls.length) {
    var tick = function () {
      ttls.forEach(function (el) {
        var left = Math.max(0, Math.round((Date.parse(el.getAttribute("data-expires")) - Date.now()) / 1000));
        el.textContent = left > 0 ? left + " s" : "expired";
      });
    };
    tick(); setInterval(tick, 1000);
  }
  // Graph: a small force layout drawn as SVG from the server's JSON; the neighbour list stays as the fallback.
  var svg = document.getElementById("graph");
  if (svg && svg.getAttribute("data-graph")) {
    var g = JSON.parse(svg.getAttribute("data-graph")), ns = "http://www.w3.org/2000/svg";
    var w = svg.clientWidth || 800, h = svg.clientHeight || 480, byName = {};
    var nodes = g.nodes.map(function (n, i) {
      var a = 2 * Math.PI * i / Math.max(1, g.nodes.length);
      var node = { name: n.name, type: n.type, center: n.center, x: w / 2 + Math.cos(a) * w / 4, y: h / 2 + Math.sin(a) * h / 4, vx: 0, vy: 0 };
      byName[n.name] = node; return node;
    });
    var links = g.links.filter(function (l) { return byName[l.from] && byName[l.to]; })
      .map(function (l) { return { s: byName[l.from], t: byName[l.to], type: l.type }; });
    for (var step = 0; step < 300; step++) {
      for (var i = 0; i < nodes.length; i++) {
        for (var j = i + 1; j < nodes.length; j++) {
          var a = nodes[i], b = nodes[j], dx = a.x - b.x, dy = a.y - b.y, d2 = dx * dx + dy * dy + 0.01, f = 2000 / d2;
          a.vx += dx * f / Math.sqrt(d2); a.vy += dy * f / Math.sqrt(d2); b.vx -= dx * f / Math.sqrt(d2); b.vy -= dy * f / Math.sqrt(d2);
        }
      }
      links.forEach(function (l) {
        var dx = l.t.x - l.s.x, dy = l.t.y - l.s.y, d = Math.sqrt(dx * dx + dy * dy) + 0.01, f = (d - 110) * 0.02;
        l.s.vx += dx / d * f; l.s.vy += dy / d * f; l.t.vx -= dx / d * f; l.t.vy -= dy / d * f;
      });
      nodes.forEach(function (n) {
        n.vx += (w / 2 - n.x) * 0.005; n.vy += (h / 2 - n.y) * 0.005;
        n.x = Math.min(w - 20, Math.max(20, n.x + n.vx * 0.5)); n.y = Math.min(h - 20, Math.max(20, n.y + n.vy * 0.5)); n.vx *= 0.6; n.vy *= 0.6;
      });
    }
    var el = function (name, attrs, parent) {
      var e = document.createElementNS(ns, name);
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      parent.appendChild(e); return e;
    };
    links.forEach(function (l) {
      el("line", { x1: l.s.x, y1: l.s.y, x2: l.t.x, y2: l.t.y }, svg);
      el("text", { x: (l.s.x + l.t.x) / 2, y: (l.s.y + l.t.y) / 2, fill: "#5b6570" }, svg).textContent = l.type;
    });
    var base = svg.getAttribute("data-href");
    nodes.forEach(function (n) {
      var link = el("a", { href: base + encodeURIComponent(n.name), "aria-label": n.name }, svg);
      el("circle", { cx: n.x, cy: n.y, r: n.center ? 11 : 8, fill: n.center ? "#c0392b" : "#2358c4" }, link);
      el("text", { x: n.x + 12, y: n.y + 4 }, svg).textContent = n.name;
    });
  }
})();
