// The admin's booking page: the job's trace (GET /api/bookings/{id}/trace/, read with the staff
// member's session) drawn with Leaflet, its timeline beside it, and a replay that moves a marker
// along the route and highlights the timeline's entry of the moment.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("trace-config").textContent);
  var status = document.getElementById("trace-status");
  var timeline = document.getElementById("trace-timeline");
  var play = document.getElementById("trace-play");
  var slider = document.getElementById("trace-slider");
  var speed = document.getElementById("trace-speed");
  var clock = document.getElementById("trace-time");

  // ISO 8601 with up to 6 decimals -> milliseconds (Date.parse promises only 3).
  function ms(iso) {
    return Date.parse(iso.replace(/(\.\d{3})\d+/, "$1"));
  }
  function hms(iso) {
    return new Date(ms(iso)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function words(event) {
    if (event.kind === "status") {
      return (event.from ? event.from + " \u2192 " : "") + event.to + (event.by ? " (" + event.by + ")" : "") +
        (event.note ? ": " + event.note : "");
    }
    if (event.kind === "message") return event.senderRole + ": \u201c" + event.text + "\u201d";
    if (event.kind === "arrival") {
      if (event.farMeters) return "set PARTNER_ARRIVED " + (event.farMeters / 1000).toFixed(1) + " km from the place";
      return "came near the place (" + event.distanceMeters + " m)";
    }
    if (event.kind === "alert") {
      return "SOS by the " + event.raisedBy.role + (event.note ? ": \u201c" + event.note + "\u201d" : "") +
        (event.acknowledgedAt ? " (acknowledged " + hms(event.acknowledgedAt) + ")" : " (not acknowledged)");
    }
    return event.kind;
  }

  var map = L.map("trace-map", { zoomControl: true, attributionControl: !!config.tileUrl });
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { maxZoom: 19, attribution: config.tileAttribution }).addTo(map);
  }
  var destination = L.circleMarker(config.destination, {
    radius: 7, color: "#c0392b", fillOpacity: 0.6, className: "trace-destination",
  }).addTo(map).bindTooltip("the booking's address");
  map.setView(config.destination, 14);

  function show(trace) {
    var points = trace.points;
    var times = points.map(function (p) { return ms(p.recordedAt); });
    var items = trace.events.map(function (event) {
      var li = document.createElement("li");
      li.className = "kind-" + event.kind;
      li.dataset.at = event.at;
      var when = document.createElement("span");
      when.className = "when";
      when.textContent = hms(event.at);
      var what = document.createElement("span");
      what.className = "what";
      what.textContent = words(event);
      li.append(when, what);
      timeline.appendChild(li);
      if (event.kind === "alert" && event.location) {
        L.circleMarker([event.location.latitude, event.location.longitude], {
          radius: 9, color: "#b00020", weight: 3, fillOpacity: 0.2, className: "trace-alert",
        }).addTo(map).bindTooltip("SOS " + hms(event.at));
      }
      return { li: li, at: ms(event.at) };
    });
    status.textContent = points.length + " points, " + trace.events.length + " events" +
      (points.length ? "" : " (no route recorded for this booking)");
    if (!points.length) return;

    var latlngs = points.map(function (p) { return [p.latitude, p.longitude]; });
    var route = L.polyline(latlngs, { color: "#1f6fb2", weight: 4, className: "trace-route" }).addTo(map);
    L.circleMarker(latlngs[0], { radius: 5, color: "#2a7d2a", className: "trace-start" }).addTo(map)
      .bindTooltip("accepted: " + hms(points[0].recordedAt));
    var marker = L.circleMarker(latlngs[0], {
      radius: 8, color: "#000", weight: 2, fillColor: "#f5b800", fillOpacity: 1, className: "trace-marker",
    }).addTo(map);
    map.fitBounds(route.getBounds().extend(destination.getLatLng()), { padding: [20, 20] });

    slider.max = String(points.length - 1);
    slider.disabled = false;
    play.disabled = false;
    var timer = null;

    function seek(i) {
      i = Math.max(0, Math.min(points.length - 1, i));
      slider.value = String(i);
      marker.setLatLng(latlngs[i]);
      clock.textContent = hms(points[i].recordedAt) + "  (" + (i + 1) + "/" + points.length + ")";
      var current = null;
      items.forEach(function (item) {
        if (item.at <= times[i]) current = item;
        item.li.classList.remove("current");
      });
      if (current) {
        current.li.classList.add("current");
        current.li.scrollIntoView({ block: "nearest" });
      }
    }
    function stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      play.textContent = "Play";
    }
    play.addEventListener("click", function () {
      if (timer !== null) return stop();
      if (Number(slider.value) >= points.length - 1) seek(0);
      play.textContent = "Pause";
      timer = setInterval(function () {
        var next = Number(slider.value) + Number(speed.value);
        seek(next);
        if (next >= points.length - 1) stop();
      }, 100);
    });
    slider.addEventListener("input", function () { seek(Number(slider.value)); });
    // A timeline entry takes the replay to the route's point of that moment.
    items.forEach(function (item) {
      item.li.addEventListener("click", function () {
        var i = 0;
        while (i + 1 < times.length && times[i + 1] <= item.at) i++;
        seek(i);
      });
    });
    seek(0);
  }

  fetch(config.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.message || response.statusText);
        return body;
      });
    })
    .then(show)
    .catch(function (error) { status.textContent = "The trace could not be read: " + error.message; });
})();
