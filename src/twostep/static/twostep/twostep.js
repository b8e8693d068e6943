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
