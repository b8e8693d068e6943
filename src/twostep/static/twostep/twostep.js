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

  if (typeof window.print === "function") {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  }
})();
