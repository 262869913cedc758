// Keyboard review: j/k (or arrows) move between matches, c/d/l decide, e exports. No framework.
(function () {
  "use strict";
  function cards() { return Array.prototype.slice.call(document.querySelectorAll("li.match")); }
  function current() {
    var active = document.activeElement;
    var card = active && active.closest ? active.closest("li.match") : null;
    return card || document.querySelector("li.match.current") || cards()[0] || null;
  }
  function focus(card) {
    if (!card) { return; }
    cards().forEach(function (c) { c.classList.remove("current"); });
    card.classList.add("current");
    card.focus();
    card.scrollIntoView({ block: "nearest" });
  }
  function move(step) {
    var all = cards();
    var i = all.indexOf(current());
    focus(all[Math.max(0, Math.min(all.length - 1, i + step))]);
  }
  function press(key) {
    var card = current();
    if (!card) { return; }
    var button = card.querySelector('button[data-key="' + key + '"]');
    if (button) { button.click(); }
  }
  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") { return; }
    switch (event.key) {
      case "j": case "ArrowDown": move(1); break;
      case "k": case "ArrowUp": move(-1); break;
      case "c": case "d": case "l": case "e": press(event.key); break;
      default: return;
    }
    event.preventDefault();
  });
  document.addEventListener("DOMContentLoaded", function () { focus(cards()[0]); });
})();
