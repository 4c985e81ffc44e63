// Live pages: the server says "changed" over server-sent events and the page fetches its
// live part again. Forms stay outside that part, so a half-typed reply is never lost.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.events || !window.EventSource) {
    return;
  }
  var fetching = null;

  // What finds the focused element again in the new live part: its id, or its link.
  function focusKey(element) {
    if (!element || !live.contains(element)) {
      return null;
    }
    if (element.id) {
      return "#" + CSS.escape(element.id);
    }
    var href = element.getAttribute("href");
    return href ? 'a[href="' + CSS.escape(href) + '"]' : null;
  }
  var again = false;

  function refresh() {
    if (fetching) {
      again = true;
      return;
    }
    fetching = fetch(window.location.href, {
      headers: { "X-Live": "1" },
      credentials: "same-origin",
    })
      .then(function (response) {
        if (response.status === 401) {
          window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          var focused = focusKey(document.activeElement);
          live.innerHTML = html;
          live.dataset.refreshed = String(Date.now());
          var again = focused && live.querySelector(focused);
          if (again) {
            again.focus();  // a keyboard user keeps their place
          }
        }
      })
      .catch(function () {})
      .finally(function () {
        fetching = null;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  // Waiting times and SLA marks age without any change to the tickets: refresh them too.
  window.setInterval(function () {
    if (!document.hidden) {
      refresh();
    }
  }, 30000);

  var source = new EventSource(live.dataset.events);
  source.addEventListener("changed", refresh);
  source.addEventListener("open", function () {
    live.dataset.connected = "yes";
  });
})();
