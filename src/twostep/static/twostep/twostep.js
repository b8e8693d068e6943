// twostep — small progressive enhancements. Every page works without this file; it only shows
// the Copy and Print buttons (hidden in the HTML) where the browser can do what they promise.
(function () {
  "use strict";

  function flash(button, label) {
    var original = button.textContent;
    button.textContent = label;
    window.setTimeout(function () { button.textContent = original; }, 2000);
  }

  if (navigator.clipboard && window.isSecureContext) {
    document.querySelectorAll("[data-copy-text]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(button.getAttribute("data-copy-text")).then(
          function () { flash(button, button.getAttribute("data-copied-label") || "✓"); },
          function () { /* permission refused: the text stays on the page to copy by hand */ }
        );
      });
    });
  }

  // The new backup codes page: leaving before "I have saved my backup codes" asks first — the
  // browser's own question on reload, Back or closing, this page's dialog for its links and
  // header buttons. The language switch (data-keeps-page) comes back to the same codes.
  var leaveDialog = document.querySelector("dialog[data-unsaved-codes]");
  if (leaveDialog && typeof leaveDialog.showModal === "function") {
    var leaving = false;
    var go = null;
    window.addEventListener("beforeunload", function (event) {
      if (!leaving) { event.preventDefault(); event.returnValue = ""; }
    });
    var ask = function (then) { go = then; leaveDialog.showModal(); };
    leaveDialog.querySelector("[data-stay]").addEventListener("click", function () { go = null; leaveDialog.close(); });
    leaveDialog.querySelector("[data-leave]").addEventListener("click", function () {
      var then = go;
      leaveDialog.close();
      leaving = true;
      if (then) { then(); }
    });
    document.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a[href]") : null;
      if (!link || leaving || link.hasAttribute("download") || link.getAttribute("href").charAt(0) === "#") { return; }
      event.preventDefault();
      ask(function () { window.location.assign(link.href); });
    });
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (leaving) { return; }
      if (form.hasAttribute("data-codes-saved") || form.hasAttribute("data-keeps-page")) { leaving = true; return; }
      event.preventDefault();
      var submitter = event.submitter || null;
      ask(function () { if (form.requestSubmit) { form.requestSubmit(submitter); } else { form.submit(); } });
    });
  }

  // An answer with errors: move focus (and the view) to the summary at the top, so a person on a
  // phone sees what is wrong; each of its links then leads to its field, opening a disclosure
  // the field may sit in.
  var problem = document.querySelector("[data-error-summary]") || document.getElementById("page-error");
  if (problem) {
    problem.focus();
    problem.scrollIntoView({block: "start"});
  }
  document.querySelectorAll("[data-field-link]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var input = document.getElementById(link.getAttribute("data-field-link"));
      if (!input) { return; }
      event.preventDefault();
      for (var box = input.closest("details"); box; box = box.parentElement.closest("details")) {
        box.open = true;
      }
      var label = document.querySelector("label[for='" + input.id + "']");
      input.focus({preventScroll: true});
      (label || input).scrollIntoView({block: "start"});
    });
  });

  if (typeof window.print === "function") {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  }
})();
