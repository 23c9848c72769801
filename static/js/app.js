// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  function updateSelection(form) {
    if (!form) return;
    var all = form.querySelector("input[name=all_matching]");
    var boxes = form.querySelectorAll("input[name=ids]");
    var ticked = form.querySelectorAll("input[name=ids]:checked").length;
    var label = all && all.checked ? all.dataset.total : String(ticked);
    form.querySelectorAll("[data-selected-count]").forEach(function (el) { el.textContent = label; });
    form.querySelectorAll("[data-needs-selection]").forEach(function (el) {
      el.disabled = !(ticked > 0 || (all && all.checked));
    });
    var pageBox = form.querySelector("[data-select-page]");
    if (pageBox) {
      pageBox.checked = boxes.length > 0 && ticked === boxes.length;
      pageBox.indeterminate = ticked > 0 && ticked < boxes.length;
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    var form = target.closest("form");
    if (target.matches("[data-select-page]")) {
      form.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = target.checked; });
      if (!target.checked) {
        var all = form.querySelector("input[name=all_matching]");
        if (all) all.checked = false;
      }
    }
    if (target.matches("input[name=all_matching]") && target.checked) {
      form.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = true; });
    }
    if (target.matches("input[name=ids]") && !target.checked) {
      var allMatching = form.querySelector("input[name=all_matching]");
      if (allMatching) allMatching.checked = false;
    }
    if (target.matches("[data-select-page], input[name=ids], input[name=all_matching]")) updateSelection(form);
  });

  function init(root) {
    (root || document).querySelectorAll("form[data-selection]").forEach(updateSelection);
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function () { init(document); });
})();
