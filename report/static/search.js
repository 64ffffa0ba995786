// Offline search over search-index.js (window.HCPCS_CODES: [code, short, long, status]).
// Results are built with textContent, never innerHTML: a description is always shown as text.
(function () {
  "use strict";
  var LIMIT = 200;
  var codes = window.HCPCS_CODES || [];
  var rows = codes.map(function (c) {
    return { code: c[0], short: c[1], long: c[2], status: c[3],
             text: (c[0] + " " + c[1] + " " + c[2]).toLowerCase() };
  });

  function search(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) { return []; }
    var code = query.trim().toUpperCase();
    var hits = rows.filter(function (r) {
      return words.every(function (w) { return r.text.indexOf(w) !== -1; });
    });
    function rank(r) { return r.code === code ? 0 : (r.code.indexOf(code) === 0 ? 1 : 2); }
    hits.sort(function (a, b) { return rank(a) - rank(b) || (a.code < b.code ? -1 : 1); });
    return hits;
  }

  function show(query) {
    var list = document.getElementById("results");
    var summary = document.getElementById("search-summary");
    list.textContent = "";
    if (!query.trim()) { summary.textContent = codes.length + " codes: type a code or words."; return; }
    var hits = search(query);
    summary.textContent = hits.length + " code" + (hits.length === 1 ? "" : "s") + " match \u201c" +
      query + "\u201d" + (hits.length > LIMIT ? " (first " + LIMIT + " shown)" : "") + ".";
    hits.slice(0, LIMIT).forEach(function (r) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = "codes/" + encodeURIComponent(r.code) + ".html";
      link.textContent = r.code;
      link.className = "code";
      var text = document.createElement("span");
      text.textContent = " " + r.long;
      var status = document.createElement("small");
      status.textContent = " (" + r.status + ")";
      item.appendChild(link);
      item.appendChild(text);
      item.appendChild(status);
      list.appendChild(item);
    });
  }

  var input = document.getElementById("q");
  var query = new URLSearchParams(window.location.search).get("q") || "";
  input.value = query;
  show(query);
  input.addEventListener("input", function () { show(input.value); });
  document.getElementById("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    show(input.value);
  });
})();
