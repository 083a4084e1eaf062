// Live preview of a project's guidelines: the server renders them through the one sanitiser
// (common/rendering.py), so what shows here is exactly what annotators will see. Without
// JavaScript the form's Preview button does the same with a page load.
(function () {
  "use strict";
  const source = document.querySelector("textarea[data-preview-source]");
  const target = document.getElementById("guidelines-preview");
  if (!source || !target) return;
  const form = source.form;
  const token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  let timer = null;
  let sent = 0;

  function refresh() {
    const mine = ++sent;
    const body = new URLSearchParams({ guidelines: source.value });
    fetch(target.dataset.previewUrl, {
      method: "POST",
      headers: { "X-CSRFToken": token },
      body: body,
      credentials: "same-origin",
    })
      .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
      .then((html) => {
        if (mine === sent) target.innerHTML = html; // sanitised by the server
      })
      .catch(() => {});
  }

  source.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
  form.classList.add("js-preview");
  refresh();
})();
