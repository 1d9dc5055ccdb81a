/* The score sheet (web/templates/tasks/_sheet.html): section subtotals and
   the total as levels are chosen (points from each radio's data-points,
   which the server took from the criteria data), and the draft saved as
   the member clicks, so a dropped connection loses nothing (retried when
   the browser is back online). Without this file the page still works:
   "Lưu nháp" saves the draft and the server computes the totals. */
(function () {
  "use strict";
  var sheet = document.querySelector("[data-sheet]");
  if (!sheet) { return; }
  var form = sheet.closest("form");
  var stateLabel = sheet.querySelector("[data-draft-state]");

  function format(value) { return String(Math.round(value * 100) / 100).replace(".", ","); }

  function update() {
    var sums = { A: 0, B: 0, C: 0 };
    var chosen = 0;
    sheet.querySelectorAll("input[type=radio][data-points]:checked").forEach(function (input) {
      var section = input.getAttribute("data-section");
      if (section in sums) { sums[section] += Number(input.getAttribute("data-points")) || 0; }
      chosen += 1;
    });
    Object.keys(sums).forEach(function (code) {
      var output = sheet.querySelector("[data-subtotal='" + code + "']");
      if (output) { output.textContent = format(sums[code]); }
    });
    var total = sheet.querySelector("[data-total]");
    if (total) { total.textContent = format(sums.A + sums.B + sums.C); }
    var count = sheet.querySelector("[data-chosen]");
    if (count) { count.textContent = String(chosen); }
    var recused = sheet.querySelector("[data-recused]");
    sheet.classList.toggle("recused", !!(recused && recused.checked));
  }

  var url = sheet.getAttribute("data-autosave");
  var pending = null;
  var timer = null;

  function save() {
    timer = null;
    if (!form || !url) { return; }
    var body = new URLSearchParams(new FormData(form));
    body.delete("action");
    pending = fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-Draft-Autosave": "1", "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function () {
      var now = new Date();
      stateLabel.textContent = sheet.getAttribute("data-label-saved") + " " +
        String(now.getHours()).padStart(2, "0") + ":" + String(now.getMinutes()).padStart(2, "0") +
        ":" + String(now.getSeconds()).padStart(2, "0");
      sheet.setAttribute("data-saved", "1");
    }).catch(function () {
      stateLabel.textContent = sheet.getAttribute("data-label-offline");
      sheet.setAttribute("data-saved", "0");
    }).finally(function () { pending = null; });
  }

  function later() {
    sheet.setAttribute("data-saved", "0");
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(save, 400);
  }

  // Every field of the form: a self-assessment sits in the dossier's form,
  // whose other fields are kept in the same draft.
  (form || sheet).addEventListener("change", function () { update(); later(); });
  (form || sheet).addEventListener("input", function (event) {
    if (event.target.matches("textarea, input[type=text]")) { later(); }
  });
  window.addEventListener("online", function () { if (sheet.getAttribute("data-saved") === "0") { save(); } });
  update();
}());
