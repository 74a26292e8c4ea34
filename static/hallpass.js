// Hallpass's only script besides htmx, and only progressive enhancement: every page works
// without it. Loaded from /static (the Content-Security-Policy allows no inline script).
//
// 1. A "Copy" button beside each secret or value meant to be pasted elsewhere (a new API
//    key, a one-time password, the two-factor setup secret, an SSO redirect URI): every
//    element with a `data-copy="what it is"` attribute gets one. Without JavaScript the
//    value is still plain selectable text; where the Clipboard API is missing (a page served
//    over plain http to another machine) the button selects the text for Ctrl+C.
// 2. The SSO wizard's redirect URI follows the provider id as it is typed: an element with
//    `data-id-from="<input id>"` shows its `data-template` with "<id>" replaced by that
//    input's value.
(function () {
  "use strict";

  function textOf(el) {
    return (el.tagName === "INPUT" ? el.value : el.textContent).trim();
  }

  function select(el) {
    if (el.tagName === "INPUT") {
      el.select();
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function copy(el, button, status) {
    var say = function (message) {
      button.textContent = message;
      status.textContent = message;
      window.setTimeout(function () {
        button.textContent = "Copy";
        status.textContent = "";
      }, 4000);
    };
    var fallback = function () {
      select(el);
      say("Press Ctrl+C to copy");
    };
    if (!navigator.clipboard || !window.isSecureContext) {
      fallback();
      return;
    }
    navigator.clipboard.writeText(textOf(el)).then(function () {
      say("Copied");
    }, fallback);
  }

  function enhance(root) {
    var found = root.querySelectorAll ? root.querySelectorAll("[data-copy]") : [];
    Array.prototype.forEach.call(found, function (el) {
      if (el.hasAttribute("data-copy-ready")) {
        return;
      }
      el.setAttribute("data-copy-ready", "");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn-secondary copy";
      button.textContent = "Copy";
      button.title = "Copy the " + el.getAttribute("data-copy");
      var status = document.createElement("span");
      status.className = "visually-hidden";
      status.setAttribute("role", "status");
      button.addEventListener("click", function () {
        copy(el, button, status);
      });
      el.insertAdjacentElement("afterend", button);
      button.insertAdjacentElement("afterend", status);
    });
  }

  function follow(root) {
    var found = root.querySelectorAll ? root.querySelectorAll("[data-id-from]") : [];
    Array.prototype.forEach.call(found, function (el) {
      var input = document.getElementById(el.getAttribute("data-id-from"));
      if (!input || !el.hasAttribute("data-template") || el.hasAttribute("data-following")) {
        return;
      }
      el.setAttribute("data-following", "");
      var update = function () {
        var id = input.value.trim();
        el.textContent = el.getAttribute("data-template").split("<id>").join(id || "<id>");
      };
      input.addEventListener("input", update);
      update();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    follow(document);
  });
  // Fragments swapped in by htmx.
  document.addEventListener("htmx:load", function (event) {
    enhance(event.target);
    follow(event.target);
  });
})();
