// The "open a session" page: counts the members ticked present and says,
// as the server will, whether they make the council's quorum.
(function () {
  "use strict";
  var box = document.getElementById("quorum-live");
  var form = document.getElementById("open-session");
  if (!box || !form) { return; }
  var fraction = parseFloat(box.dataset.fraction);
  var chairRequired = box.dataset.chairRequired === "1";
  var roster = parseInt(box.dataset.roster, 10);
  var required = Math.max(1, Math.ceil(fraction * roster - 1e-9));
  function update() {
    var ticked = form.querySelectorAll("input[name=present]:checked");
    var chair = false;
    ticked.forEach(function (input) { if (input.dataset.role === "chair") { chair = true; } });
    var met = ticked.length >= required && (chair || !chairRequired);
    var text = box.dataset.template.replace("{present}", ticked.length).replace("{roster}", roster)
      .replace("{required}", required).replace("{chair}", chair ? box.dataset.chairHere : box.dataset.chairAway);
    box.textContent = (met ? box.dataset.met : box.dataset.unmet) + " " + text;
    box.classList.toggle("unmet", !met);
  }
  form.addEventListener("change", update);
  update();
}());
