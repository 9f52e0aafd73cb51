// Inlet web UI: progressive enhancements only. Every page works without this
// script; it adds copy buttons, show/hide of the key, live request-log rows,
// live execution logs, inline validation and a confirmation prompt.
"use strict";

function $(sel, root) { return (root || document).querySelector(sel); }
function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

function copyText(text, button) {
  var done = function () {
    var label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
  } else {
    fallbackCopy(text);
    done();
  }
}

function fallbackCopy(text) {
  var area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "sr-only";
  document.body.appendChild(area);
  area.select();
  try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
  document.body.removeChild(area);
}

function setupCopy() {
  $$("button[data-copy], button[data-copy-value]").forEach(function (button) {
    button.addEventListener("click", function () {
      var value = button.getAttribute("data-copy-value");
      if (value === null) {
        var source = $(button.getAttribute("data-copy"));
        value = source ? source.value : "";
      }
      copyText(value, button);
    });
  });
}

function setupReveal() {
  var button = $("#toggle-key");
  var input = $("#webhook-url");
  if (!button || !input) return;
  button.hidden = false;
  $$("details.nojs").forEach(function (d) { d.hidden = true; });
  button.addEventListener("click", function () {
    var shown = button.getAttribute("aria-pressed") === "true";
    input.value = shown ? input.getAttribute("data-masked") : input.getAttribute("data-full");
    button.setAttribute("aria-pressed", shown ? "false" : "true");
    button.textContent = shown ? "Show key" : "Hide key";
  });
}

function setupConfirm() {
  $$("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
}

function setupFilter() {
  $$("input[data-filter]").forEach(function (input) {
    var rows = function () { return $$(input.getAttribute("data-filter")); };
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      rows().forEach(function (row) {
        row.hidden = q !== "" && row.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  });
}

// IPv4 or IPv6 address, optionally with a prefix length.
function validCidr(text) {
  var parts = text.split("/");
  if (parts.length > 2) return false;
  var addr = parts[0];
  var v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(addr);
  var v6 = !v4 && /^[0-9a-fA-F:.]+$/.test(addr) && addr.indexOf(":") >= 0 &&
    (addr.match(/::/g) || []).length <= 1 && addr.split(":").length <= 8;
  if (!v4 && !v6) return false;
  if (parts.length === 1) return true;
  if (!/^\d{1,3}$/.test(parts[1])) return false;
  var bits = parseInt(parts[1], 10);
  return bits <= (v4 ? 32 : 128);
}

function setupValidation() {
  $$("input[data-validate=cidr]").forEach(function (input) {
    var message = document.getElementById(input.getAttribute("aria-describedby"));
    var check = function () {
      var value = input.value.trim();
      var ok = value === "" || validCidr(value);
      var text = ok ? "" : "Not an IP address or CIDR range (e.g. 192.30.252.0/22 or 2001:db8::/32).";
      input.setCustomValidity(text);
      input.setAttribute("aria-invalid", ok ? "false" : "true");
      if (message) message.textContent = text;
    };
    input.addEventListener("input", check);
  });
}

function setupLiveLog() {
  var status = $("#live-status[data-stream]");
  var body = $("#log tbody");
  if (!status || !body || !window.EventSource) return;
  var source = new EventSource(status.getAttribute("data-stream"));
  source.addEventListener("open", function () {
    status.classList.add("on");
    status.textContent = "Live: new requests appear at the top as they arrive.";
  });
  source.addEventListener("row", function (event) {
    var template = document.createElement("template");
    template.innerHTML = event.data.trim();
    var row = template.content.firstElementChild;
    if (!row || (row.getAttribute("data-id") && $('tr[data-id="' + row.getAttribute("data-id") + '"]', body))) return;
    row.classList.add("new");
    body.insertBefore(row, body.firstChild);
    var empty = $("#log-empty");
    if (empty) empty.remove();
  });
  source.addEventListener("error", function () {
    status.classList.remove("on");
    status.textContent = "Live updates paused; retrying…";
  });
}

function setupExecutionLog() {
  var pre = $("#execution-log[data-stream]");
  if (!pre || !window.EventSource) return;
  var source = new EventSource(pre.getAttribute("data-stream"));
  var append = function (event) { pre.textContent += (pre.textContent ? "\n" : "") + event.data; };
  source.addEventListener("message", append);
  source.addEventListener("line", append);
  source.addEventListener("end", function () { source.close(); });
  source.addEventListener("error", function () { source.close(); });
}

document.addEventListener("DOMContentLoaded", function () {
  setupCopy();
  setupReveal();
  setupConfirm();
  setupFilter();
  setupValidation();
  setupLiveLog();
  setupExecutionLog();
});
