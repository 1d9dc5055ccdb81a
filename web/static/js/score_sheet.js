/* Score sheet: live row totals, the council's average and the stars it
   gives, and an "add member" button that reveals the next empty row.
   Progressive enhancement: without this file every row is shown and the
   server computes the same figures after posting. The star bands come from
   the page (data-bands, from the criteria index), never from this file. */
(function () {
  "use strict";
  var sheet = document.querySelector("[data-score-sheet]");
  if (!sheet) { return; }
  var bands = JSON.parse(sheet.getAttribute("data-bands") || "[]")
    .sort(function (a, b) { return b.min - a.min; });
  var starsWord = sheet.getAttribute("data-label-stars") || "";
  var rows = Array.prototype.slice.call(sheet.querySelectorAll("tr[data-row]"));

  function number(input) {
    var text = input.value.trim().replace(",", ".");
    if (text === "") { return null; }
    var value = Number(text);
    return isFinite(value) ? value : NaN;
  }

  function isEmpty(row) {
    return Array.prototype.every.call(row.querySelectorAll("input"), function (input) {
      return input.value.trim() === "";
    });
  }

  function starsFor(average) {
    for (var i = 0; i < bands.length; i += 1) {
      if (average >= bands[i].min) { return bands[i].stars; }
    }
    return null;
  }

  function format(value) { return String(Math.round(value * 100) / 100); }

  function update() {
    var totals = [];
    var complete = true;
    rows.forEach(function (row) {
      var output = row.querySelector("[data-total]");
      if (isEmpty(row)) { output.textContent = ""; return; }
      var sum = 0;
      var ok = true;
      row.querySelectorAll("input[data-part]").forEach(function (input) {
        var value = number(input);
        var max = Number(input.getAttribute("max"));
        if (value === null || isNaN(value) || value < 0 || value > max) { ok = false; } else { sum += value; }
      });
      output.textContent = ok ? format(sum) : "–";
      if (ok) { totals.push(sum); } else { complete = false; }
    });
    var averageOut = sheet.querySelector("[data-average]");
    var starsOut = sheet.querySelector("[data-stars]");
    if (!totals.length || !complete) {
      averageOut.textContent = "";
      starsOut.textContent = "";
      return;
    }
    var average = totals.reduce(function (a, b) { return a + b; }, 0) / totals.length;
    var stars = starsFor(Math.round(average * 100) / 100);
    averageOut.textContent = format(average);
    starsOut.textContent = stars ? new Array(stars + 1).join("\u2605") + " " + stars + " " + starsWord : "";
  }

  // Show the filled rows and one empty row; the button reveals the next.
  var firstEmpty = rows.findIndex(isEmpty);
  rows.forEach(function (row, index) {
    if (firstEmpty >= 0 && index > firstEmpty && isEmpty(row)) { row.hidden = true; }
  });
  var add = document.createElement("button");
  add.type = "button";
  add.className = "secondary";
  add.textContent = sheet.getAttribute("data-label-add") || "+";
  add.addEventListener("click", function () {
    var next = rows.find(function (row) { return row.hidden; });
    if (next) {
      next.hidden = false;
      next.querySelector("input").focus();
    }
    add.hidden = !rows.some(function (row) { return row.hidden; });
  });
  add.hidden = !rows.some(function (row) { return row.hidden; });
  sheet.querySelector("table").insertAdjacentElement("afterend", add);

  sheet.addEventListener("input", update);
  update();
}());
