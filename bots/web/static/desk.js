// Live pages: the server says "changed" over server-sent events and the page fetches its
// live part again. Forms stay outside that part, so a half-typed reply is never lost.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.events || !window.EventSource) {
    return;
  }
  var fetching = null;
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
          var focused = document.activeElement && document.activeElement.id;
          live.innerHTML = html;
          live.dataset.refreshed = String(Date.now());
          if (focused && live.contains(document.getElementById(focused))) {
            document.getElementById(focused).focus();
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
