// Pingtai portal: progressive enhancement only. Every page works without this file.
// Live progress: the application page names its event stream (data-live) and the fragment to
// fetch again (data-refresh); each server-sent event re-renders that part of the page.
(function () {
  "use strict";
  function follow(region) {
    if (!window.EventSource) { return; }
    var source = new EventSource(region.getAttribute("data-live"));
    var pending = null;
    source.onmessage = function () {
      if (pending) { return; }
      pending = window.setTimeout(function () {
        pending = null;
        fetch(region.getAttribute("data-refresh"), { credentials: "same-origin", headers: { "HX-Request": "true" } })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html === null) { return; }
            region.innerHTML = html;
            if (window.htmx) { window.htmx.process(region); }
          });
      }, 150);
    };
  }
  document.addEventListener("DOMContentLoaded", function () {
    var regions = document.querySelectorAll("[data-live]");
    for (var i = 0; i < regions.length; i++) { follow(regions[i]); }
  });
})();
