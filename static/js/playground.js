// The playground (finetuning/playground_views.py): the page arrives with both answers pending;
// ask each panel's answer (one bounded call on the server) and put it in place of its form.
// The verdict buttons stay disabled until both answers are in.
(() => {
  "use strict";
  const forms = [...document.querySelectorAll("form[data-playground-answer]")];
  if (!forms.length) return;
  let answered = 0;

  const done = () => {
    answered += 1;
    if (answered === forms.length) {
      const ok = !document.querySelector("[data-testid^=answer-error-]");
      document.querySelectorAll("[data-needs-answers]").forEach((b) => { b.disabled = !ok; });
    }
  };

  forms.forEach(async (form) => {
    const pending = form.querySelector("[data-testid^=pending-]");
    try {
      const response = await fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      });
      const holder = document.createElement("div");
      holder.innerHTML = await response.text();  // server-rendered, escaped by the template
      form.replaceWith(...holder.childNodes);
    } catch (error) {
      pending.textContent = "The answer did not arrive: " + error;
      pending.dataset.testid = "answer-error-" + form.querySelector("[name=side]").value;
    }
    done();
  });
})();
