/* Small progressive enhancements. Everything works without this file (forms post normally).
   No inline handlers anywhere: behaviour is attached here by data attributes (CSP: script-src 'self'). */
(function () {
  "use strict";

  // --- PIN pad: shown only when JavaScript runs; types into the PIN field of the same form.
  function showPinpads(root) {
    root.querySelectorAll("[data-pinpad]").forEach(function (pad) { pad.hidden = false; });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-pinpad] button");
    if (!button) { return; }
    var form = button.closest("form");
    var input = form && form.querySelector("input[name='staff_pin']");
    if (!input) { return; }
    if (button.hasAttribute("data-clear")) { input.value = ""; }
    else if (button.hasAttribute("data-back")) { input.value = input.value.slice(0, -1); }
    else if (input.value.length < 8) { input.value += button.getAttribute("data-digit"); }
  });

  // --- Countdowns: "in 4:32" next to a time; when a cooldown ends, the card panel refreshes itself.
  function formatLeft(seconds) {
    var m = Math.floor(seconds / 60), s = seconds % 60;
    if (m >= 60) { return Math.floor(m / 60) + ":" + String(m % 60).padStart(2, "0") + ":" + String(s).padStart(2, "0"); }
    return m + ":" + String(s).padStart(2, "0");
  }
  function tick() {
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var left = Math.ceil((Date.parse(el.getAttribute("data-until")) - Date.now()) / 1000);
      if (left > 0) {
        el.textContent = "(" + formatLeft(left) + ")";
      } else if (!el.hasAttribute("data-done")) {
        el.setAttribute("data-done", "");
        el.textContent = "";
        var undo = el.closest("[data-undo]");
        if (undo) { undo.hidden = true; }  // the undo window has passed: the server would refuse it now
        var panel = el.closest("[data-card]"), base = document.querySelector("[data-card-url]");
        if (panel && base && window.htmx && el.closest(".wait")) {
          window.htmx.ajax("GET", base.getAttribute("data-card-url") + panel.getAttribute("data-card"),
                           { target: "#work", swap: "outerHTML" });
        }
      }
    });
  }
  setInterval(tick, 1000);

  // --- Print button on the poster.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) { window.print(); }
  });

  // --- Live colour preview on the program form (the server re-renders the preview on change too).
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches(".program-form input[type='color']")) { return; }
    var svg = document.querySelector("[data-preview]");
    if (!svg) { return; }
    var roles = { background_color: ["bg"], foreground_color: ["fg", "stamp"], label_color: ["label"] }[input.name] || [];
    roles.forEach(function (role) {
      svg.querySelectorAll("[data-role='" + role + "']").forEach(function (el) {
        if (role === "stamp") {
          el.setAttribute("stroke", input.value);
          if (el.getAttribute("fill") !== "none") { el.setAttribute("fill", input.value); }
        } else { el.setAttribute("fill", input.value); }
      });
    });
  });

  // --- Camera scan of the customer's QR code (the card number's digits) on the tablet page.
  var stream = null, detector = null, scanning = false;
  function scanButton() { return document.querySelector("[data-scan]"); }
  function loadJsQR(url) {
    return new Promise(function (resolve, reject) {
      if (window.jsQR) { resolve(); return; }
      var script = document.createElement("script");
      script.src = url; script.onload = resolve; script.onerror = reject;
      document.head.appendChild(script);
    });
  }
  function stopScan() {
    scanning = false;
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    var box = document.querySelector("[data-scanner]");
    if (box) { box.hidden = true; }
  }
  function found(text) {
    var match = String(text).replace(/[\s-]/g, "").match(/\d{10}/);
    if (!match) { return false; }
    stopScan();
    var input = document.getElementById("find");
    if (input) { input.value = match[0]; }
    var base = scanButton().getAttribute("data-card-url");
    window.htmx.ajax("GET", base + match[0], { target: "#work", swap: "outerHTML" });
    return true;
  }
  function startScan() {
    var button = scanButton(), box = document.querySelector("[data-scanner]");
    var video = box.querySelector("video"), status = box.querySelector("[data-scan-status]");
    var canvas = document.createElement("canvas"), ctx = canvas.getContext("2d", { willReadFrequently: true });
    box.hidden = false;
    var ready = ("BarcodeDetector" in window)
      ? Promise.resolve().then(function () { detector = new window.BarcodeDetector({ formats: ["qr_code"] }); })
      : loadJsQR(button.getAttribute("data-jsqr"));
    ready.then(function () {
      return navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    }).then(function (s) {
      stream = s; video.srcObject = s; scanning = true;
      return video.play();
    }).then(function loop() {
      if (!scanning) { return; }
      if (video.readyState >= 2) {
        if (detector) {
          detector.detect(video).then(function (codes) {
            if (!(codes.length && found(codes[0].rawValue))) { requestAnimationFrame(loop); }
          }, function () { requestAnimationFrame(loop); });
          return;
        }
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        ctx.drawImage(video, 0, 0);
        var image = ctx.getImageData(0, 0, canvas.width, canvas.height);
        var code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
        if (code && found(code.data)) { return; }
      }
      requestAnimationFrame(loop);
    }).catch(function () {
      status.textContent = button.getAttribute("data-no-camera");
      scanning = false;
    });
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-scan]")) { startScan(); }
    if (event.target.closest("[data-scan-stop]")) { stopScan(); }
  });

  // --- Inline validation answers only fill error slots: keep aria-invalid in step with them.
  function syncInvalid(root) {
    root.querySelectorAll("[aria-describedby]").forEach(function (input) {
      if (!input.matches("input, select, textarea")) { return; }
      var invalid = input.getAttribute("aria-describedby").split(/\s+/).some(function (id) {
        var el = document.getElementById(id);
        return el && el.classList.contains("field-error") && el.textContent.trim() !== "";
      });
      if (invalid) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
    });
  }

  function init(root) {
    syncInvalid(root);
    showPinpads(root);
    var button = scanButton();
    if (button && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) { button.hidden = false; }
    tick();
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function () { init(document); });
})();
