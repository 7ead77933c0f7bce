/* Result page: follow the status while the X-ray is analysed (polling a small JSON endpoint,
   replacing only the results section), and crop: drag a rectangle on the X-ray (pointer events,
   so mouse, pen and touch all work) and send it in the image's own pixel coordinates. */
(function () {
  "use strict";

  // --- status polling ---
  var body = document.getElementById("result-body");
  var chip = document.getElementById("status-chip");
  var pendingStates = { received: true, processing: true };
  var delay = 1500;

  function poll() {
    fetch(body.getAttribute("data-status-url"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (data) {
        if (data.state !== body.getAttribute("data-state")) {
          body.setAttribute("data-state", data.state);
          body.setAttribute("data-status", data.status);
          body.innerHTML = data.html;
          chip.textContent = data.status_label.charAt(0).toUpperCase() + data.status_label.slice(1);
          chip.className = "chip chip-" + data.status;
        }
        // The worker replaces the file the dentist sent (kept as received until then: DICOM, HEIC...)
        // by its decoded PNG: show, and crop on, the stored picture, not a link that is now gone.
        var xray = document.getElementById("xray");
        if (xray && data.image_url &&
            new URL(data.image_url, window.location.href).pathname !== new URL(xray.src, window.location.href).pathname) {
          xray.src = data.image_url;
        }
        if (data.is_pending) schedule();
      })
      .catch(function () { delay = Math.min(delay * 2, 15000); schedule(); });
  }
  function schedule() { window.setTimeout(poll, delay); }
  if (body && (pendingStates[body.getAttribute("data-status")] || body.hasAttribute("data-regions-pending"))) schedule();

  // --- crop ---
  var area = document.getElementById("crop-area");
  var img = document.getElementById("xray");
  var rect = document.getElementById("crop-rect");
  var submit = document.getElementById("crop-submit");
  if (!area || !img) return;
  var start = null;
  var box = null;

  function point(e) {
    var r = img.getBoundingClientRect();
    return {
      x: Math.max(0, Math.min(e.clientX - r.left, r.width)),
      y: Math.max(0, Math.min(e.clientY - r.top, r.height)),
    };
  }
  function draw(a, b) {
    var offX = img.offsetLeft, offY = img.offsetTop;
    box = { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
    rect.style.left = offX + box.x + "px";
    rect.style.top = offY + box.y + "px";
    rect.style.width = box.w + "px";
    rect.style.height = box.h + "px";
    rect.hidden = false;
  }
  area.addEventListener("pointerdown", function (e) {
    e.preventDefault();
    area.setPointerCapture(e.pointerId);
    start = point(e);
    draw(start, start);
  });
  area.addEventListener("pointermove", function (e) { if (start) draw(start, point(e)); });
  function finish(e) {
    if (!start) return;
    draw(start, point(e));
    start = null;
    // Screen pixels -> the stored image's pixels.
    var scaleX = img.naturalWidth / img.clientWidth, scaleY = img.naturalHeight / img.clientHeight;
    var ok = box.w > 8 && box.h > 8;
    document.getElementById("crop-x").value = Math.round(box.x * scaleX);
    document.getElementById("crop-y").value = Math.round(box.y * scaleY);
    document.getElementById("crop-width").value = Math.round(box.w * scaleX);
    document.getElementById("crop-height").value = Math.round(box.h * scaleY);
    submit.disabled = !ok;
    if (!ok) rect.hidden = true;
  }
  area.addEventListener("pointerup", finish);
  area.addEventListener("pointercancel", function () { start = null; });
})();
